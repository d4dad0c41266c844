#include "attestation/verifier.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "attestation/log_checks.hpp"
#include "attestation/policy_check.hpp"
#include "attestation/uefi_events.hpp"

namespace mcimd::attestation {

namespace {


// Quoted PCR values by bank and index, built from the evidence only after it matched the selection.
using Quoted = PcrValues;

Status check_selection(const protocol::Evidence& ev, const Attest& quote, Quoted& quoted) {
  std::set<std::pair<uint16_t, unsigned>> selected;
  for (const auto& sel : quote.selection) {
    if (!hash_size(sel.hash_alg))
      return fail(Code::Unsupported, "quote selects unsupported bank " + std::to_string(sel.hash_alg));
    for (unsigned pcr : sel.pcrs)
      if (!selected.emplace(sel.hash_alg, pcr).second)
        return fail(Code::InvalidArgument, "quote selects " + pcr_label(sel.hash_alg, pcr) + " twice");
  }
  if (selected.empty()) return fail(Code::InvalidArgument, "quote selects no PCR");
  std::string problems;
  auto note = [&](const std::string& s) { problems += (problems.empty() ? "" : "; ") + s; };
  for (const auto& bank : ev.pcrs) {
    auto alg_id = hash_alg_from_name(bank.bank);
    if (!alg_id) {
      note("unknown bank \"" + bank.bank + "\"");
      continue;
    }
    if (quoted.count(*alg_id)) {
      note("bank " + bank.bank + " listed twice");
      continue;
    }
    auto& out = quoted[*alg_id];
    for (const auto& [pcr, value] : bank.values) {
      if (!selected.count({*alg_id, pcr})) note(pcr_label(*alg_id, pcr) + " is not in the quote's selection");
      else if (value.size() != hash_size(*alg_id)) note(pcr_label(*alg_id, pcr) + " has the wrong size");
      else out[pcr] = value;
    }
  }
  for (const auto& [alg_id, pcr] : selected)
    if (!quoted[alg_id].count(pcr)) note(pcr_label(alg_id, pcr) + " is quoted but its value is missing");
  if (!problems.empty()) return fail(Code::InvalidArgument, problems);
  return {};
}

Status check_pcr_digest(const Attest& quote, const Quoted& quoted, uint16_t hash_alg) {
  // Part 3 §18.4 TPM2_Quote: pcrDigest = H_sign(PCR values concatenated in selection order —
  // banks as listed, PCRs ascending within each).
  Bytes concat;
  for (const auto& sel : quote.selection)
    for (unsigned pcr : sel.pcrs) {
      const Bytes& v = quoted.at(sel.hash_alg).at(pcr);
      concat.insert(concat.end(), v.begin(), v.end());
    }
  Bytes digest = MCIMD_TRY(hash(hash_alg, concat));
  if (digest != quote.pcr_digest)
    return fail(Code::InvalidArgument, "PCR values do not hash to the quote's pcrDigest");
  return {};
}

// Serial number arithmetic (RFC 1982 §3.2) on 32-bit counters: a is after b when a − b mod 2^32
// is in 1 … 2^31 − 1. Part 3 §18.1: for a signing key outside the endorsement and platform
// hierarchies the TPM adds a fixed per-key offset mod 2^32 to resetCount and restartCount in
// every attestation (obfuscation), so an AK under the SRK sees them wrap at any value.
enum class Order { Same, After, Before };
Order compare_counter(uint32_t now, uint32_t last) {
  const uint32_t delta = now - last;  // unsigned: mod 2^32
  if (delta == 0) return Order::Same;
  return delta < (1u << 31) ? Order::After : Order::Before;
}

}  // namespace

Status check_clock(const ClockInfo& now, const ClockInfo& last) {
  // Part 1 §36.6: resetCount grows on every TPM Reset, restartCount on every Restart/Resume
  // (and is cleared by a Reset, so after a Reset it says nothing); clock only goes forward while
  // both stay. Clock is never obfuscated (Part 3 §18.1), the counters are: compared mod 2^32.
  bool stale = false;
  switch (compare_counter(now.reset_count, last.reset_count)) {
    case Order::After: break;
    case Order::Before: stale = true; break;
    case Order::Same:
      switch (compare_counter(now.restart_count, last.restart_count)) {
        case Order::After: break;
        case Order::Before: stale = true; break;
        case Order::Same: stale = now.clock <= last.clock; break;
      }
  }
  if (stale)
    return fail(Code::InvalidArgument,
                "replayed or stale evidence: reset/restart/clock " + std::to_string(now.reset_count) + "/" +
                    std::to_string(now.restart_count) + "/" + std::to_string(now.clock) + " not after " +
                    std::to_string(last.reset_count) + "/" + std::to_string(last.restart_count) + "/" +
                    std::to_string(last.clock));
  return {};
}

namespace {

// quote.nonce: the quote's extraData against the qualifying data this verifier expects, and
// when they differ, what the quote was made for instead.
Status check_qualifying_data(const Bytes& extra_data, const protocol::Evidence& ev, const VerifierOptions& opt) {
  using protocol::QuoteDomain;
  if (opt.nonce.empty()) return fail(Code::InvalidArgument, "verifier has no nonce to compare with");
  if (extra_data == protocol::qualifying_data(opt.domain, opt.nonce)) return {};
  if (ev.nonce != opt.nonce && extra_data == protocol::qualifying_data(opt.domain, ev.nonce))
    return fail(Code::InvalidArgument, "quote answers another nonce: replayed evidence");
  for (QuoteDomain other : protocol::kQuoteDomains)
    if (other != opt.domain && extra_data == protocol::qualifying_data(other, opt.nonce))
      return fail(Code::InvalidArgument, "quote was made in the " + std::string(protocol::short_name(other)) +
                                             " domain, not the " + std::string(protocol::short_name(opt.domain)) +
                                             " one: a quote for another purpose");
  if (extra_data == opt.nonce)
    return fail(Code::InvalidArgument, "quote's extraData is the bare nonce, not its qualifying data in the " +
                                           std::string(protocol::short_name(opt.domain)) + " domain");
  return fail(Code::InvalidArgument, "quote's extraData is not the qualifying data of the verifier's nonce");
}

}  // namespace

std::string_view outcome(const Check& check) {
  if (!check.passed) return "fail";
  return check.not_checked ? "not checked" : "pass";
}

const Check* VerificationResult::find(std::string_view name) const {
  for (const auto& c : checks)
    if (c.name == name) return &c;
  return nullptr;
}

std::string VerificationResult::failures() const {
  std::string out;
  for (const auto& c : checks)
    if (!c.passed) out += (out.empty() ? "" : "; ") + c.name + ": " + c.reason;
  return out;
}

VerificationResult verify(const protocol::Evidence& ev, const VerifierOptions& opt) {
  VerificationResult result;
  CheckRecorder rec(result.checks);

  // Attestation key.
  std::optional<TpmPublic> ak;
  if (auto parsed = parse_tpm_public(ev.ak_public); parsed) {
    ak = std::move(*parsed);
    rec.pass("ak.public");
    rec.status("ak.attributes", check_attestation_key(*ak));
  } else {
    rec.failed("ak.public", parsed.error().message);
  }
  if (opt.enrolled_ak_public) {
    if (ev.ak_public == *opt.enrolled_ak_public) rec.pass("ak.enrolled");
    else rec.failed("ak.enrolled", "attestation key differs from the enrolled one");
  }

  // Endorsement key certificate: verified, refused, or visibly not checked — never absent.
  if (!opt.ek_cas) {
    rec.not_checked("ek.chain", ev.ek_certificate ? "no EK CA bundle given; the EK certificate is not verified"
                                                  : "no EK CA bundle given and no EK certificate");
  } else if (!ev.ek_certificate) {
    rec.failed("ek.chain", "evidence carries no EK certificate");
  } else {
    std::optional<std::span<const uint8_t>> ek_pub;
    if (opt.ek_public) ek_pub = *opt.ek_public;
    rec.status("ek.chain", verify_ek_certificate(*ev.ek_certificate, *opt.ek_cas, ek_pub),
               "certified by a TPM manufacturer CA");
  }

  // Quote.
  std::optional<Attest> quote;
  if (auto parsed = parse_attest(ev.quote_message); parsed) {
    quote = std::move(*parsed);
    rec.pass("quote.format");
  } else {
    rec.failed("quote.format", parsed.error().message);
  }
  Quoted quoted;
  bool pcrs_match_quote = false;
  if (quote) {
    uint16_t digest_alg = ak && ak->scheme_hash != alg::kNull ? ak->scheme_hash : alg::kSha256;
    if (ak) {
      auto verified = verify_signature(*ak, ev.quote_message, ev.quote_signature);
      if (verified) {
        digest_alg = *verified;
        rec.pass("quote.signature");
      } else {
        rec.failed("quote.signature", verified.error().message);
      }
    } else {
      rec.failed("quote.signature", "no usable attestation key");
    }
    if (quote->magic == kTpmGeneratedValue) rec.pass("quote.magic");
    else rec.failed("quote.magic", "magic is not TPM_GENERATED_VALUE: not produced by a TPM");
    if (quote->type == kTpmStAttestQuote) rec.pass("quote.type");
    else rec.failed("quote.type", "attestation type is not TPM_ST_ATTEST_QUOTE");
    rec.status("quote.nonce", check_qualifying_data(quote->extra_data, ev, opt));
    if (quote->type == kTpmStAttestQuote) {
      // The values count as quoted only once they are exactly the selection and hash to its digest.
      pcrs_match_quote = rec.status("quote.pcr_selection", check_selection(ev, *quote, quoted)) &&
                         rec.status("quote.pcr_digest", check_pcr_digest(*quote, quoted, digest_alg));
    }
    if (opt.last_clock) rec.status("quote.clock", check_clock(quote->clock, *opt.last_clock));
    result.clock = quote->clock;
  }

  // Firmware event log: its content counts only once it replayed to the quoted PCRs.
  std::optional<EventContent> content;
  std::string no_content_reason = "no firmware event log";
  if (ev.event_log) {
    no_content_reason = "the firmware event log does not replay to the quoted PCRs";
    if (auto log = parse_event_log(*ev.event_log, opt.limits); !log) {
      rec.failed("eventlog.parse", log.error().message);
      no_content_reason = "the firmware event log does not parse";
    } else {
      rec.pass("eventlog.parse", std::to_string(log->events.size()) + " events");
      auto replayed = replay_event_log(*log);
      if (!replayed) {
        rec.failed("eventlog.replay", replayed.error().message);
      } else if (!pcrs_match_quote) {
        rec.failed("eventlog.replay", "no verified quoted PCR values to compare with");
      } else {
        std::string detail;
        if (rec.status("eventlog.replay", check_event_log_replay(*replayed, quoted, detail), detail))
          content = read_event_content(*log);
      }
    }
  }

  // IMA measurement list.
  if (ev.ima_log) {
    auto entries = parse_ima_log(*ev.ima_log, opt.limits);
    if (!entries) {
      rec.failed("ima.replay", entries.error().message);
    } else if (!pcrs_match_quote) {
      rec.failed("ima.replay", "no verified quoted PCR values to compare with");
    } else if (auto replayed = check_ima_replay(*entries, quoted); !replayed) {
      rec.failed("ima.replay", replayed.error().message);
      rec.failed("ima.boot_aggregate", "the IMA log does not replay to the quoted PCR 10");
    } else {
      rec.pass("ima.replay", replayed->detail);
      rec.status("ima.boot_aggregate", check_ima_boot_aggregate(*entries, quoted),
                 "the first entry is the hash of the quoted boot PCRs");
    }
  }

  // Reference policy.
  if (opt.policy) {
    PolicyInputs inputs;
    inputs.quoted = &quoted;
    inputs.has_event_log = ev.event_log.has_value();
    inputs.has_ima_log = ev.ima_log.has_value();
    inputs.content = content ? &*content : nullptr;
    inputs.no_content_reason = no_content_reason;
    check_policy(*opt.policy, inputs, result.checks);
  }

  result.ok = !result.checks.empty() &&
              std::all_of(result.checks.begin(), result.checks.end(), [](const Check& c) { return c.passed; });
  return result;
}

}  // namespace mcimd::attestation
