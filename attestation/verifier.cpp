#include "attestation/verifier.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace mcimd::attestation {

namespace {

class Recorder {
 public:
  explicit Recorder(VerificationResult& r) : r_(r) {}
  void pass(std::string name, std::string detail = {}) { r_.checks.push_back({std::move(name), true, std::move(detail)}); }
  void failed(std::string name, std::string reason) { r_.checks.push_back({std::move(name), false, std::move(reason)}); }
  void not_checked(std::string name, std::string reason) {
    r_.checks.push_back({std::move(name), true, "not checked: " + std::move(reason), /*not_checked=*/true});
  }
  // Records a Status as a check; returns whether it passed.
  bool status(std::string name, const Status& s, std::string detail = {}) {
    if (s) pass(std::move(name), std::move(detail));
    else failed(std::move(name), s.error().message);
    return bool(s);
  }

 private:
  VerificationResult& r_;
};

std::string pcr_label(uint16_t bank, unsigned pcr) { return hash_alg_name(bank) + ":" + std::to_string(pcr); }

// Quoted PCR values by bank and index, built from the evidence only after it matched the selection.
using Quoted = std::map<uint16_t, std::map<unsigned, Bytes>>;

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

Status check_replay(const PcrValues& replayed, const Quoted& quoted, std::string& detail) {
  std::string problems;
  std::size_t compared = 0;
  for (const auto& [alg_id, pcrs] : replayed) {
    auto q = quoted.find(alg_id);
    if (q == quoted.end()) continue;
    for (const auto& [pcr, value] : pcrs) {
      auto v = q->second.find(pcr);
      if (v == q->second.end()) continue;
      ++compared;
      if (v->second != value)
        problems += (problems.empty() ? "" : ", ") + pcr_label(alg_id, pcr);
    }
  }
  if (!problems.empty()) return fail(Code::InvalidArgument, "event log does not replay to the quoted " + problems);
  if (compared == 0) return fail(Code::InvalidArgument, "no PCR the event log extends is quoted");
  detail = std::to_string(compared) + " quoted PCRs replayed";
  return {};
}

Status check_ima(const std::string& text, const Quoted& quoted, const EventLogLimits& limits, std::string& detail) {
  auto entries = MCIMD_TRY(parse_ima_log(text, limits));
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (e.violation()) continue;
    auto h = ima_template_hash(e, alg::kSha1);
    if (h && *h != e.template_hash)
      return fail(Code::InvalidArgument, "IMA entry " + std::to_string(i + 1) + " (" + e.filename +
                                             "): template hash does not match its fields");
  }
  ImaReplay r = MCIMD_TRY(replay_ima(entries));
  auto value = [&](uint16_t bank) -> const Bytes* {
    auto b = quoted.find(bank);
    if (b == quoted.end()) return nullptr;
    auto v = b->second.find(10);
    return v == b->second.end() ? nullptr : &v->second;
  };
  detail = std::to_string(r.entries) + " IMA entries";
  if (const Bytes* v = value(alg::kSha1)) {
    if (*v != r.sha1) return fail(Code::InvalidArgument, "IMA log does not replay to the quoted sha1:10");
    detail += " replayed into sha1:10";
    return {};
  }
  if (const Bytes* v = value(alg::kSha256)) {
    if (r.sha256_per_bank && *v == *r.sha256_per_bank) {
      detail += " replayed into sha256:10 (per-bank template digests)";
      return {};
    }
    if (*v == r.sha256_padded) {
      detail += " replayed into sha256:10 (padded SHA-1 template hashes)";
      return {};
    }
    return fail(Code::InvalidArgument, "IMA log does not replay to the quoted sha256:10");
  }
  return fail(Code::InvalidArgument, "PCR 10 is not quoted, so the IMA log cannot be verified");
}

std::string hex_short(const Bytes& b) { return to_hex(b).substr(0, 16) + "…"; }

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
  Recorder rec(result);

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
      pcrs_match_quote = rec.status("quote.pcr_selection", check_selection(ev, *quote, quoted));
      if (pcrs_match_quote) rec.status("quote.pcr_digest", check_pcr_digest(*quote, quoted, digest_alg));
    }
    if (opt.last_clock) rec.status("quote.clock", check_clock(quote->clock, *opt.last_clock));
    result.clock = quote->clock;
  }

  // Firmware event log.
  std::optional<EventLog> log;
  if (ev.event_log) {
    auto parsed = parse_event_log(*ev.event_log, opt.limits);
    if (parsed) {
      log = std::move(*parsed);
      rec.pass("eventlog.parse", std::to_string(log->events.size()) + " events");
      auto replayed = replay_event_log(*log);
      if (!replayed) {
        rec.failed("eventlog.replay", replayed.error().message);
      } else if (!pcrs_match_quote) {
        rec.failed("eventlog.replay", "no verified quoted PCR values to compare with");
      } else {
        std::string detail;
        auto s = check_replay(*replayed, quoted, detail);
        rec.status("eventlog.replay", s, detail);
      }
    } else {
      rec.failed("eventlog.parse", parsed.error().message);
    }
  }

  // IMA measurement list.
  if (ev.ima_log) {
    if (!pcrs_match_quote) {
      rec.failed("ima.replay", "no verified quoted PCR values to compare with");
    } else {
      std::string detail;
      auto s = check_ima(*ev.ima_log, quoted, opt.limits, detail);
      rec.status("ima.replay", s, detail);
    }
  }

  // Reference policy.
  if (opt.policy) {
    const ReferencePolicy& p = *opt.policy;
    if (p.require_event_log) {
      if (ev.event_log) rec.pass("policy.event_log");
      else rec.failed("policy.event_log", "policy requires a firmware event log");
    }
    if (p.require_ima_log) {
      if (ev.ima_log) rec.pass("policy.ima_log");
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
    std::map<unsigned, std::vector<std::pair<uint16_t, const std::vector<Bytes>*>>> by_pcr;
    for (const auto& [bank, pcrs] : p.pcrs)
      for (const auto& [pcr, allowed] : pcrs) by_pcr[pcr].emplace_back(bank, &allowed);
    for (const auto& [pcr, banks] : by_pcr) {
      std::string name = "policy.pcr[" + std::to_string(pcr) + "]";
      std::string problem;
      for (const auto& [bank, allowed] : banks) {
        auto b = quoted.find(bank);
        if (b == quoted.end() || !b->second.count(pcr)) {
          problem = pcr_label(bank, pcr) + " is not quoted";
          break;
        }
        const Bytes& v = b->second.at(pcr);
        if (std::find(allowed->begin(), allowed->end(), v) == allowed->end()) {
          problem = pcr_label(bank, pcr) + " value " + hex_short(v) + " is not allowed";
          break;
        }
      }
      if (problem.empty()) rec.pass(name);
      else rec.failed(name, problem);
    }
    for (const auto& [type, banks] : p.events) {
      std::string name = "policy.event[" + event_type_name(type) + "]";
      if (!log) {
        rec.failed(name, "no parsed firmware event log");
        continue;
      }
      std::string problem;
      std::size_t seen = 0;
      for (const auto& e : log->events) {
        if (e.type != type) continue;
        ++seen;
        for (const auto& [bank, allowed] : banks) {
          const Bytes* d = e.digest(bank);
          if (!d || std::find(allowed.begin(), allowed.end(), *d) == allowed.end()) {
            problem = "event " + std::to_string(e.sequence) + " " + hash_alg_name(bank) + " digest " +
                      (d ? hex_short(*d) : std::string("(none)")) + " is not allowed";
            break;
          }
        }
        if (!problem.empty()) break;
      }
      if (problem.empty()) rec.pass(name, std::to_string(seen) + " events allowed");
      else rec.failed(name, problem);
    }
  }

  result.ok = !result.checks.empty() &&
              std::all_of(result.checks.begin(), result.checks.end(), [](const Check& c) { return c.passed; });
  return result;
}

}  // namespace mcimd::attestation
