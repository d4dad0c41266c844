#include "attestation/policy_check.hpp"

#include <algorithm>
#include <cctype>

#include "attestation/verifier_tpm.hpp"

namespace mcimd::attestation {

namespace {

std::string hex_short(const Bytes& b) { return to_hex(b).substr(0, 16) + "…"; }

bool contains(const std::vector<Bytes>& list, const Bytes& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// UEFI file paths name FAT files: case-insensitive, '\' separated (UEFI 2.x §13.3).
std::string normalised_path(std::string_view path) {
  std::string out;
  for (char c : path) out.push_back(c == '/' ? '\\' : char(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

void check_pcr_values(const ReferencePolicy& p, const PcrValues& quoted, CheckRecorder& rec) {
  std::map<unsigned, std::vector<std::pair<uint16_t, const std::vector<Bytes>*>>> by_pcr;
  for (const auto& [bank, pcrs] : p.pcrs)
    for (const auto& [pcr, allowed] : pcrs) by_pcr[pcr].emplace_back(bank, &allowed);
  for (const auto& [pcr, banks] : by_pcr) {
    std::string problem;
    for (const auto& [bank, allowed] : banks) {
      auto b = quoted.find(bank);
      if (b == quoted.end() || !b->second.count(pcr)) {
        problem = pcr_label(bank, pcr) + " is not quoted";
        break;
      }
      const Bytes& v = b->second.at(pcr);
      if (!contains(*allowed, v)) {
        problem = pcr_label(bank, pcr) + " value " + hex_short(v) + " is not allowed";
        break;
      }
    }
    const std::string name = "policy.pcr[" + std::to_string(pcr) + "]";
    if (problem.empty()) rec.pass(name);
    else rec.failed(name, problem);
  }
}

Status check_variable(const VariableRule& rule, const EventContent& content) {
  if (!content.unverified_variables.empty()) {
    const auto& u = content.unverified_variables.front();
    return fail(Code::InvalidArgument, "event " + std::to_string(u.sequence) + " (" + event_type_name(u.type) +
                                           ") claims a UEFI variable, but " + u.reason +
                                           ": the log does not show which variables were measured");
  }
  const std::string what = rule.name + " (" + guid_to_string(rule.guid) + ")";
  std::size_t matched = 0;
  for (const auto& m : content.variables) {
    if (m.variable.guid != rule.guid || m.variable.name != rule.name || (rule.pcr && m.pcr != *rule.pcr)) continue;
    ++matched;
    const Bytes& data = m.variable.data;
    if (!contains(rule.values, data) && !contains(rule.data_sha256, *hash(alg::kSha256, data)))
      return fail(Code::InvalidArgument, "event " + std::to_string(m.sequence) + ": " + what + " data " +
                                             (data.empty() ? std::string("(empty)") : hex_short(data)) +
                                             " is not allowed");
  }
  if (matched == 0)
    return fail(Code::InvalidArgument, "no event in the log measures " + what +
                                           (rule.pcr ? " in PCR " + std::to_string(*rule.pcr) : std::string()));
  return {};
}

std::string variable_detail(const VariableRule& rule, const EventContent& content) {
  std::size_t matched = 0;
  bool uncovered = false;
  for (const auto& m : content.variables)
    if (m.variable.guid == rule.guid && m.variable.name == rule.name && (!rule.pcr || m.pcr == *rule.pcr)) {
      ++matched;
      uncovered = uncovered || !m.name_covered;
    }
  std::string out = std::to_string(matched) + " measurement(s) allowed";
  if (uncovered) out += "; the name is not covered by the digest (EV_EFI_VARIABLE_BOOT over VariableData only)";
  return out;
}

bool image_matches(const LoadedImage& image, const ApplicationRule& rule) {
  for (const auto& [bank, allowed] : rule.digests) {
    auto d = std::find_if(image.digests.begin(), image.digests.end(), [b = bank](const EventDigest& x) {
      return x.hash_alg == b;
    });
    if (d == image.digests.end() || !contains(allowed, d->digest)) return false;
  }
  if (rule.path && (!image.file_path || normalised_path(*image.file_path) != normalised_path(*rule.path))) return false;
  return true;
}

Status check_applications(const std::vector<ApplicationRule>& rules, const EventContent& content, std::string& detail) {
  if (content.images.empty())
    return fail(Code::InvalidArgument, "the log measured no EFI application into PCR 4");
  for (const auto& image : content.images) {
    if (std::any_of(rules.begin(), rules.end(), [&](const ApplicationRule& r) { return image_matches(image, r); }))
      continue;
    std::string digests;
    for (const auto& d : image.digests)
      if (hash_size(d.hash_alg)) digests += " " + hash_alg_name(d.hash_alg) + ":" + hex_short(d.digest);
    return fail(Code::InvalidArgument, "event " + std::to_string(image.sequence) + " (" + event_type_name(image.type) +
                                           (image.file_path ? ", " + *image.file_path : std::string()) + ")" + digests +
                                           " is not an allowed application");
  }
  detail = std::to_string(content.images.size()) + " application(s) allowed";
  return {};
}

}  // namespace

void check_policy(const ReferencePolicy& p, const PolicyInputs& in, std::vector<Check>& checks) {
  CheckRecorder rec(checks);
  static const PcrValues kNone;
  const PcrValues& quoted = in.quoted ? *in.quoted : kNone;
  if (p.require_event_log) {
    if (in.has_event_log) rec.pass("policy.event_log");
    else rec.failed("policy.event_log", "policy requires a firmware event log");
  }
  if (p.require_ima_log) {
    if (in.has_ima_log) rec.pass("policy.ima_log");
    else rec.failed("policy.ima_log", "policy requires an IMA log");
  }
  if (!p.required_pcrs.empty()) {
    std::string missing;
    for (const auto& [bank, pcrs] : p.required_pcrs)
      for (unsigned pcr : pcrs)
        if (!quoted.count(bank) || !quoted.at(bank).count(pcr))
          missing += (missing.empty() ? "" : ", ") + pcr_label(bank, pcr);
    if (missing.empty()) rec.pass("policy.required_pcrs");
    else rec.failed("policy.required_pcrs", "not quoted: " + missing);
  }
  check_pcr_values(p, quoted, rec);
  for (const auto& rule : p.variables) {
    const std::string name = "policy.variable[" + rule.name + "]";
    if (!in.content) {
      rec.failed(name, in.no_content_reason);
      continue;
    }
    if (rec.status(name, check_variable(rule, *in.content))) checks.back().reason = variable_detail(rule, *in.content);
  }
  if (!p.applications.empty()) {
    if (!in.content) {
      rec.failed("policy.applications", in.no_content_reason);
    } else {
      std::string detail;
      auto s = check_applications(p.applications, *in.content, detail);
      rec.status("policy.applications", s, detail);
    }
  }
}

}  // namespace mcimd::attestation
