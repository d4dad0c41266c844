#pragma once
// The operator's platform validation (TR 33.812 PVA): checks a device's evidence against its
// enrolled keys, the TPM manufacturers' CAs and a reference policy, and says why it refused.
// Links no TPM code: only protocol/ wire types, tss2-mu marshalling and OpenSSL.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/check.hpp"
#include "attestation/eventlog.hpp"
#include "attestation/ima.hpp"
#include "attestation/policy.hpp"
#include "attestation/verifier_ek.hpp"
#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"
#include "protocol/evidence.hpp"
#include "protocol/quote_domain.hpp"

namespace mcimd::attestation {

struct VerifierOptions {
  // What the quote must answer: its qualifying data must be protocol::qualifying_data(domain,
  // nonce). For remote validation the challenge this verifier sent; for a platform report the
  // report's bytes (domain PlatformReport).
  Bytes nonce;
  protocol::QuoteDomain domain = protocol::QuoteDomain::OperatorEvidence;
  std::optional<CaBundle> ek_cas;            // when set, the evidence's EK certificate must chain to it
  std::optional<Bytes> ek_public;            // enrolled EK (TPM2B_PUBLIC): the certificate must be for it
  std::optional<Bytes> enrolled_ak_public;   // enrolled AK (TPM2B_PUBLIC): the evidence must use it
  std::optional<ReferencePolicy> policy;
  std::optional<ClockInfo> last_clock;       // known device: the clock info of its last accepted quote
  EventLogLimits limits;
};


struct VerificationResult {
  bool ok = false;                  // true only when every check passed (and there is at least one)
  std::vector<Check> checks;
  std::optional<ClockInfo> clock;   // the quote's clock info: the device's new state once accepted
  // The check of that name, nullptr if it was not made.
  const Check* find(std::string_view name) const;
  // "name: reason; name: reason" for every failed check.
  std::string failures() const;
};

// quote.clock: `now` is after `last` — resetCount later, or the same and restartCount later, or
// both the same and clock later. The counters are compared mod 2^32 (RFC 1982 serial numbers):
// an AK outside the endorsement/platform hierarchies sees them offset by a per-key constant
// (TPM 2.0 Part 3 §18.1), so they may wrap; a difference of 2^31 or more counts as going back.
// InvalidArgument "replayed or stale evidence: …" otherwise.
[[nodiscard]] Status check_clock(const ClockInfo& now, const ClockInfo& last);

// Verifies evidence. Checks, in this order, each recorded with pass/fail and reason:
//   ak.public          the AK's TPM2B_PUBLIC parses (RSA or ECC)
//   ak.attributes      restricted, fixedTPM, fixedParent, sensitiveDataOrigin, sign, not decrypt;
//                      ECDSA P-256 or RSASSA/RSAPSS, SHA-256
//   ak.enrolled        (with enrolled_ak_public) the evidence's AK is the enrolled one
//   ek.chain           always made: with ek_cas the EK certificate is present, chains to the bundle
//                      and, with ek_public, certifies that key; without ek_cas "not checked"
//   quote.format       the message is a well-formed TPMS_ATTEST
//   quote.signature    the TPMT_SIGNATURE verifies with the AK over the message
//   quote.magic        magic is TPM_GENERATED_VALUE
//   quote.type         type is TPM_ST_ATTEST_QUOTE
//   quote.nonce        extraData equals protocol::qualifying_data(domain, nonce); the reason
//                      says when it answers another nonce or was made for another domain
//   quote.pcr_selection  the evidence carries exactly the quoted PCRs (no extra, none missing),
//                      each of its bank's digest size
//   quote.pcr_digest   H_sig(selected PCR values in selection order) equals the quote's pcrDigest
//   quote.clock        (with last_clock) check_clock: resetCount/restartCount moved forward (mod
//                      2^32), or clock did while neither changed — else "replayed or stale evidence"
//   eventlog.parse     (with a firmware log) it parses within the limits; legacy SHA-1 logs refused
//   eventlog.replay    check_event_log_replay: every quoted PCR the log covers (0–7 and every PCR it
//                      extends) replays to its quoted value
//   ima.replay         (with an IMA list) check_ima_replay: the quoted prefix replays to PCR 10 and
//                      its template hashes match their fields
//   ima.boot_aggregate (with an IMA list) check_ima_boot_aggregate over the quoted PCRs
//   policy.*           (with a policy) check_policy (policy_check.hpp), with the firmware log's
//                      content (uefi_events.hpp) only when eventlog.replay passed
// Checks whose inputs are missing are not made (no quote.* after quote.format fails, no quote.signature
// without a usable AK); no other failure stops the list.
VerificationResult verify(const protocol::Evidence& evidence, const VerifierOptions& options);

}  // namespace mcimd::attestation
