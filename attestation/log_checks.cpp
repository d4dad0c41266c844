#include "attestation/log_checks.hpp"

#include <optional>

#include "attestation/verifier_tpm.hpp"

namespace mcimd::attestation {

namespace {


void note(std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; }

std::string covered_list(const std::set<unsigned>& covered) {
  std::string out;
  for (unsigned pcr : covered) note(out, std::to_string(pcr));
  return out;
}

const char* rule_name(ImaBankRule rule) {
  switch (rule) {
    case ImaBankRule::TemplateHashSha1: return "template hashes";
    case ImaBankRule::PerBankTemplateDigest: return "per-bank template digests";
    case ImaBankRule::PaddedSha1: return "padded SHA-1 template hashes";
  }
  return "";
}

}  // namespace

Status check_event_log_replay(const EventLogReplay& replay, const PcrValues& quoted, std::string& detail) {
  std::string mismatched, unreplayable;
  std::size_t compared = 0;
  for (const auto& [bank, values] : quoted) {
    auto replayed = replay.pcrs.find(bank);
    if (replayed == replay.pcrs.end()) {
      auto why = replay.unreplayable.find(bank);
      if (why == replay.unreplayable.end()) continue;  // the log does not speak for this bank
      for (unsigned pcr : replay.covered)
        if (values.count(pcr)) {
          note(unreplayable, "the quoted " + hash_alg_name(bank) + " bank cannot be replayed: " + why->second);
          break;
        }
      continue;
    }
    for (unsigned pcr : replay.covered) {
      auto q = values.find(pcr);
      if (q == values.end()) continue;
      ++compared;
      if (q->second != replayed->second.at(pcr)) note(mismatched, pcr_label(bank, pcr));
    }
  }
  std::string problems;
  if (!mismatched.empty()) note(problems, "event log does not replay to the quoted " + mismatched);
  if (!unreplayable.empty()) note(problems, unreplayable);
  if (!problems.empty()) return fail(Code::InvalidArgument, problems);
  if (compared == 0)
    return fail(Code::InvalidArgument, "no PCR the event log covers (" + covered_list(replay.covered) +
                                           ") is quoted in a bank it can be replayed in");
  detail = std::to_string(compared) + " quoted PCRs replayed (the log covers PCRs " + covered_list(replay.covered) + ")";
  return {};
}

Result<ImaVerification> check_ima_replay(const std::vector<ImaEntry>& entries, const PcrValues& quoted) {
  if (entries.empty()) return fail(Code::InvalidArgument, "the IMA log is empty");
  std::optional<std::size_t> prefix;
  std::string banks;
  for (const auto& [bank, values] : quoted) {
    auto value = values.find(kImaPcr);
    if (value == values.end()) continue;
    const std::vector<ImaBankRule> rules =
        bank == alg::kSha1 ? std::vector{ImaBankRule::TemplateHashSha1}
                           : std::vector{ImaBankRule::PerBankTemplateDigest, ImaBankRule::PaddedSha1};
    std::optional<std::size_t> found;
    ImaBankRule used = rules.front();
    for (ImaBankRule rule : rules) {
      found = ima_quoted_prefix(entries, bank, rule, value->second);
      used = rule;
      if (found) break;
    }
    const std::string label = pcr_label(bank, kImaPcr);
    if (!found) return fail(Code::InvalidArgument, "no prefix of the IMA log replays to the quoted " + label);
    if (prefix && *prefix != *found)
      return fail(Code::InvalidArgument, "the IMA log replays to the quoted banks of PCR 10 at different entries (" +
                                             std::to_string(*prefix) + " and " + std::to_string(*found) + ")");
    prefix = found;
    note(banks, label + " (" + rule_name(used) + ")");
  }
  if (!prefix) return fail(Code::InvalidArgument, "PCR 10 is not quoted, so the IMA log cannot be verified");

  for (std::size_t i = 0; i < *prefix; ++i) {
    const ImaEntry& e = entries[i];
    if (e.violation()) continue;
    const std::string which = "IMA entry " + std::to_string(i + 1) + " (" + e.filename + ")";
    auto h = ima_template_hash(e, alg::kSha1);
    if (!h) return fail(Code::InvalidArgument, which + ": template \"" + e.template_name + "\" cannot be verified");
    if (*h != e.template_hash)
      return fail(Code::InvalidArgument, which + ": template hash does not match its fields");
  }
  ImaVerification out;
  out.quoted_entries = *prefix;
  out.appended_entries = entries.size() - *prefix;
  out.detail = std::to_string(out.quoted_entries) + " IMA entries replayed into " + banks;
  if (out.appended_entries)
    out.detail += "; " + std::to_string(out.appended_entries) + " appended after the quote, not verified";
  return out;
}

Status check_ima_boot_aggregate(const std::vector<ImaEntry>& entries, const PcrValues& quoted) {
  if (entries.empty() || entries.front().filename != "boot_aggregate" || entries.front().pcr != kImaPcr)
    return fail(Code::InvalidArgument, "the IMA log does not start with PCR 10's boot_aggregate entry");
  const ImaEntry& e = entries.front();
  Bytes expected = MCIMD_TRY(ima_boot_aggregate(e.filedata_alg, quoted));
  if (e.filedata_hash != expected)
    return fail(Code::InvalidArgument, "boot_aggregate " + e.filedata_alg + ":" + to_hex(e.filedata_hash) +
                                           " is not the hash of the quoted PCRs (" + to_hex(expected) + ")");
  return {};
}

}  // namespace mcimd::attestation
