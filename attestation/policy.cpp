#include "attestation/policy.hpp"

#include <yaml-cpp/yaml.h>

#include <string>

#include "attestation/eventlog.hpp"
#include "attestation/verifier_tpm.hpp"
#include "common/file.hpp"

namespace mcimd::attestation {

namespace {

constexpr unsigned kMaxPcr = 23;

tl::unexpected<Error> at(const YAML::Node& node, const std::string& what) {
  // yaml-cpp marks are 0-based; editors count lines from 1.
  const auto mark = node.Mark();
  std::string where = mark.line >= 0 ? "policy line " + std::to_string(mark.line + 1) + ": " : "policy: ";
  return fail(Code::InvalidArgument, where + what);
}

Result<uint16_t> bank_of(const YAML::Node& key) {
  auto bank = hash_alg_from_name(key.Scalar());
  if (!bank) return at(key, "unknown bank \"" + key.Scalar() + "\"");
  return *bank;
}

Result<unsigned> pcr_of(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (!node.IsScalar() || s.empty() || s.size() > 2 || s.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(s) > kMaxPcr)
    return at(node, "PCR index \"" + s + "\" is not 0.." + std::to_string(kMaxPcr));
  return unsigned(std::stoul(s));
}

Result<std::vector<Bytes>> digests_of(const YAML::Node& node, uint16_t bank, const std::string& what) {
  if (!node.IsSequence()) return at(node, what + " must be a list of hex digests");
  std::vector<Bytes> out;
  for (const auto& item : node) {
    if (!item.IsScalar()) return at(item, what + ": not a hex string");
    auto b = from_hex(item.Scalar(), what, hash_size(bank));
    if (!b) return at(item, what + ": " + b.error().message);
    out.push_back(std::move(*b));
  }
  return out;
}

Result<bool> bool_of(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) return at(node, key + " must be true or false");
  const std::string& s = node.Scalar();
  if (s == "true") return true;
  if (s == "false") return false;
  return at(node, key + " must be true or false");
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

Status parse_events(const YAML::Node& node, ReferencePolicy& p) {
  if (!node.IsMap()) return at(node, "events must map event types to banks");
  for (const auto& type_kv : node) {
    auto type = event_type_from_name(type_kv.first.Scalar());
    if (!type) return at(type_kv.first, "unknown event type \"" + type_kv.first.Scalar() + "\"");
    if (!type_kv.second.IsMap()) return at(type_kv.second, "events." + type_kv.first.Scalar() + " must map banks to digests");
    for (const auto& kv : type_kv.second) {
      uint16_t bank = MCIMD_TRY(bank_of(kv.first));
      std::string what = "events." + type_kv.first.Scalar() + "." + kv.first.Scalar();
      p.events[*type][bank] = MCIMD_TRY(digests_of(kv.second, bank, what));
    }
  }
  return {};
}

}  // namespace

Result<ReferencePolicy> parse_policy(std::string_view yaml) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) return at(root, "the document must be a mapping");
    ReferencePolicy p;
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      if (key == "required_pcrs") MCIMD_CHECK(parse_required(kv.second, p));
      else if (key == "pcrs") MCIMD_CHECK(parse_pcrs(kv.second, p));
      else if (key == "events") MCIMD_CHECK(parse_events(kv.second, p));
      else if (key == "require_event_log") p.require_event_log = MCIMD_TRY(bool_of(kv.second, key));
      else if (key == "require_ima_log") p.require_ima_log = MCIMD_TRY(bool_of(kv.second, key));
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
