#include "attestation/policy.hpp"

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>

#include "attestation/verifier_tpm.hpp"
#include "common/file.hpp"

namespace mcimd::attestation {

namespace {

constexpr unsigned kMaxPcr = 23;  // PC Client TPMs have PCR 0..23

std::string line_of(const YAML::Node& node) {
  // yaml-cpp marks are 0-based; editors count lines from 1.
  return std::to_string(node.Mark().line + 1);
}

tl::unexpected<Error> at(const YAML::Node& node, const std::string& what) {
  std::string where = node.Mark().line >= 0 ? "policy line " + line_of(node) + ": " : "policy: ";
  return fail(Code::InvalidArgument, where + what);
}

// YAML 1.2 §3.2.1.1 requires mapping keys to be unique, but yaml-cpp keeps every pair: a key
// given twice would otherwise be read twice, or not as the author meant.
Status check_unique_keys(const YAML::Node& node) {
  if (node.IsMap()) {
    std::map<std::string, YAML::Node> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return at(kv.first, "mapping keys must be plain values");
      auto [it, fresh] = seen.emplace(kv.first.Scalar(), kv.first);
      if (!fresh)
        return at(kv.first, "duplicate key \"" + kv.first.Scalar() + "\" (first at line " + line_of(it->second) + ")");
      MCIMD_CHECK(check_unique_keys(kv.second));
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) MCIMD_CHECK(check_unique_keys(item));
  }
  return {};
}

Result<uint16_t> bank_of(const YAML::Node& key) {
  auto bank = hash_alg_from_name(key.Scalar());
  if (!bank) return at(key, "unknown bank \"" + key.Scalar() + "\"");
  return *bank;
}

Result<unsigned> pcr_of(const YAML::Node& node) {
  const std::string& s = node.IsScalar() ? node.Scalar() : std::string();
  // No leading zero: "07" and "7" would be two keys naming one PCR.
  if (s.empty() || s.size() > 2 || s.find_first_not_of("0123456789") != std::string::npos ||
      (s.size() > 1 && s[0] == '0') || std::stoul(s) > kMaxPcr)
    return at(node, "PCR index \"" + s + "\" is not 0.." + std::to_string(kMaxPcr));
  return unsigned(std::stoul(s));
}

Result<std::vector<Bytes>> hex_list(const YAML::Node& node, const std::string& what,
                                    std::optional<std::size_t> size) {
  if (!node.IsSequence()) return at(node, what + " must be a list of hex strings");
  std::vector<Bytes> out;
  for (const auto& item : node) {
    if (!item.IsScalar()) return at(item, what + ": not a hex string");
    auto b = from_hex(item.Scalar(), what, size);
    if (!b) return at(item, what + ": " + b.error().message);
    out.push_back(std::move(*b));
  }
  return out;
}

Result<std::vector<Bytes>> digests_of(const YAML::Node& node, uint16_t bank, const std::string& what) {
  return hex_list(node, what, hash_size(bank));
}

Result<bool> bool_of(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) return at(node, key + " must be true or false");
  const std::string& s = node.Scalar();
  if (s == "true") return true;
  if (s == "false") return false;
  return at(node, key + " must be true or false");
}

Result<std::string> text_of(const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar() || node.Scalar().empty()) return at(node, what + " must be a non-empty string");
  return node.Scalar();
}

Status parse_required(const YAML::Node& node, ReferencePolicy& p) {
  if (!node.IsMap()) return at(node, "required_pcrs must map banks to PCR lists");
  for (const auto& kv : node) {
    uint16_t bank = MCIMD_TRY(bank_of(kv.first));
    if (!kv.second.IsSequence()) return at(kv.second, "required_pcrs." + kv.first.Scalar() + " must be a list");
    for (const auto& item : kv.second) p.required_pcrs[bank].insert(MCIMD_TRY(pcr_of(item)));
  }
  return {};
}

Status parse_pcrs(const YAML::Node& node, ReferencePolicy& p) {
  if (!node.IsMap()) return at(node, "pcrs must map banks to PCRs");
  for (const auto& bank_kv : node) {
    uint16_t bank = MCIMD_TRY(bank_of(bank_kv.first));
    if (!bank_kv.second.IsMap()) return at(bank_kv.second, "pcrs." + bank_kv.first.Scalar() + " must map PCRs to values");
    for (const auto& kv : bank_kv.second) {
      unsigned pcr = MCIMD_TRY(pcr_of(kv.first));
      std::string what = "pcrs." + bank_kv.first.Scalar() + "." + kv.first.Scalar();
      p.pcrs[bank][pcr] = MCIMD_TRY(digests_of(kv.second, bank, what));
    }
  }
  return {};
}

Status parse_variables(const YAML::Node& node, ReferencePolicy& p) {
  if (!node.IsSequence()) return at(node, "variables must be a list of variable rules");
  for (const auto& item : node) {
    if (!item.IsMap()) return at(item, "a variable rule must map guid, name and values or data_sha256");
    VariableRule rule;
    bool has_guid = false;
    for (const auto& kv : item) {
      const std::string key = kv.first.Scalar();
      const std::string what = "variables." + key;
      if (key == "guid") {
        auto guid = guid_from_string(MCIMD_TRY(text_of(kv.second, what)));
        if (!guid) return at(kv.second, what + " is not a GUID (8-4-4-4-12 hex digits)");
        rule.guid = *guid;
        has_guid = true;
      } else if (key == "name") {
        rule.name = MCIMD_TRY(text_of(kv.second, what));
      } else if (key == "pcr") {
        rule.pcr = MCIMD_TRY(pcr_of(kv.second));
      } else if (key == "values") {
        rule.values = MCIMD_TRY(hex_list(kv.second, what, std::nullopt));
      } else if (key == "data_sha256") {
        rule.data_sha256 = MCIMD_TRY(digests_of(kv.second, alg::kSha256, what));
      } else {
        return at(kv.first, "unknown key \"" + key + "\" in a variable rule");
      }
    }
    if (!has_guid || rule.name.empty()) return at(item, "a variable rule needs guid and name");
    if (rule.values.empty() && rule.data_sha256.empty())
      return at(item, "variable " + rule.name + " allows nothing: give values or data_sha256");
    for (const auto& other : p.variables)
      if (other.guid == rule.guid && other.name == rule.name && other.pcr == rule.pcr)
        return at(item, "variable " + rule.name + " (" + guid_to_string(rule.guid) + ") has two rules");
    p.variables.push_back(std::move(rule));
  }
  return {};
}

Status parse_applications(const YAML::Node& node, ReferencePolicy& p) {
  if (!node.IsSequence()) return at(node, "applications must be a list of allowed applications");
  for (const auto& item : node) {
    if (!item.IsMap()) return at(item, "an application entry must map path and banks of digests");
    ApplicationRule rule;
    for (const auto& kv : item) {
      const std::string key = kv.first.Scalar();
      if (key == "path") {
        rule.path = MCIMD_TRY(text_of(kv.second, "applications.path"));
        continue;
      }
      auto bank = hash_alg_from_name(key);
      if (!bank) return at(kv.first, "unknown key \"" + key + "\" in an application entry (path or a bank)");
      rule.digests[*bank] = MCIMD_TRY(digests_of(kv.second, *bank, "applications." + key));
    }
    if (rule.digests.empty()) return at(item, "an application entry needs the digests of at least one bank");
    p.applications.push_back(std::move(rule));
  }
  return {};
}

}  // namespace

Result<ReferencePolicy> parse_policy(std::string_view yaml) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) return at(root, "the document must be a mapping");
    MCIMD_CHECK(check_unique_keys(root));
    ReferencePolicy p;
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      if (key == "required_pcrs") MCIMD_CHECK(parse_required(kv.second, p));
      else if (key == "pcrs") MCIMD_CHECK(parse_pcrs(kv.second, p));
      else if (key == "variables") MCIMD_CHECK(parse_variables(kv.second, p));
      else if (key == "applications") MCIMD_CHECK(parse_applications(kv.second, p));
      else if (key == "require_event_log") p.require_event_log = MCIMD_TRY(bool_of(kv.second, key));
      else if (key == "require_ima_log") p.require_ima_log = MCIMD_TRY(bool_of(kv.second, key));
      else if (key == "events")
        return at(kv.first, "\"events\" rules keyed on event types are not accepted: an event's type is not "
                            "covered by its digest; name UEFI variables (variables) and applications "
                            "(applications) instead");
      else return at(kv.first, "unknown key \"" + key + "\"");
    }
    return p;
  } catch (const YAML::Exception& e) {
    return fail(Code::InvalidArgument, "policy line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<ReferencePolicy> load_policy(const std::filesystem::path& path) {
  std::string text = MCIMD_TRY(read_text_file(path));
  auto p = parse_policy(text);
  if (!p) return fail(Code::ConfigError, path.string() + ": " + p.error().message);
  return p;
}

}  // namespace mcimd::attestation
