#pragma once
// Platform validation for enrolled devices (TR 33.812 PVA): remote validation of full evidence,
// and semi-autonomous validation, where the device evaluated a signed reference policy itself
// and the operator checks that the verdict came from the enrolled TPM in the state reported.
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attestation/verifier.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "operator/registry.hpp"
#include "protocol/evidence.hpp"

namespace mcimd::op {

struct DeviceVerifyOptions {
  Bytes nonce;                                  // the challenge the operator sent
  std::optional<attestation::ReferencePolicy> policy;
  std::optional<attestation::CaBundle> ek_cas;  // the evidence's EK certificate must chain and be the enrolled EK's
};

struct DeviceVerification {
  std::string device;   // hex AK name of the evidence's AK (empty when it does not parse)
  attestation::VerificationResult result;
};

// Remote validation. Checks, in attestation::verify's order and with its names:
//   ak.enrolled   the registry holds an enrolled device whose AK public area equals the evidence's
//   everything attestation::verify checks, with the enrolled AK, the enrolled EK (with ek_cas),
//   the policy, and the device's last accepted clock info (quote.clock: reset/restart counters
//   and clock must move forward, so replayed evidence is refused).
// When every check passes the quote's clock info becomes the device's last one: Busy when
// another verification of the device stored one meanwhile (verifying again compares with it, so
// the same evidence is never accepted twice). Errors are the registry's only; refused evidence is
// a result with ok == false.
[[nodiscard]] Result<DeviceVerification> verify_device(const Registry& registry,
                                                       const protocol::Evidence& evidence,
                                                       const DeviceVerifyOptions& options);

struct ReportInputs {
  Bytes report_bytes;                 // the report exactly as the device sent it (the quote binds these bytes)
  protocol::PlatformReport report;    // the same, parsed
  Bytes quote_message;                // marshaled TPMS_ATTEST
  Bytes quote_signature;              // marshaled TPMT_SIGNATURE
  Bytes nonce;                        // the challenge the operator sent
  std::string policy_jws;             // the signed policy (JWS compact) the operator issued
  std::optional<std::string> device;  // hex AK name; without it the enrolled device whose AK signed the quote
};

struct ReportVerification {
  bool ok = false;   // every check passed; the device's own verdict is not one of them
  std::string device;
  std::vector<attestation::Check> checks;
};

// Semi-autonomous validation (TR 33.812 §6.1.3). The report's "trusted" and its checks are the
// device's own opinion, made by software an attacker may control (or written by anyone who can
// load the AK), so they are never part of the verdict: the operator evaluates its policy itself on
// the PCR values the quote covers and the logs the report carries. Checks:
//   ak.enrolled          an enrolled device (the one named, else the one whose AK verifies the quote)
//   ak.public, ak.attributes, ek.chain (not checked: reports carry no EK certificate),
//   quote.format, quote.signature, quote.magic, quote.type,
//   quote.pcr_selection  the report lists exactly the PCRs the quote covers
//   quote.pcr_digest     the report's PCR values hash to the quote's pcrDigest
//   quote.clock          (once the device was seen) counters and clock moved forward
//   quote.report_digest  the quote's extraData is protocol::qualifying_data(PlatformReport, the
//                        report's bytes): a quote made for anything else (evidence for a nonce
//                        that happens to be the report's hash, another report) is refused
//   eventlog.*, ima.*    the logs the report carries, as attestation::verify checks them
//   policy.*             the signed policy's rules (attestation::check_policy) on the quoted values
//                        and logs; a rule needing a log the report lacks fails
//   report.nonce         the report answers this nonce
//   report.policy_digest the report names SHA-256 of this signed policy
// InvalidArgument when the signed policy itself does not verify or parse (policy_from_jws).
// When every check passes the quote's clock info becomes the device's last one (Busy as for
// verify_device).
[[nodiscard]] Result<ReportVerification> verify_report(const Registry& registry, const ReportInputs& inputs);

// The reference policy a signed policy (JWS compact, whitespace around it ignored) carries,
// checked with the key of its own x5c leaf: the operator reading back what it issued.
[[nodiscard]] Result<attestation::ReferencePolicy> policy_from_jws(std::string_view policy_jws);

// SHA-256 of a signed policy as a device computes it: over the JWS compact serialization,
// without whitespace a file holding it may add around it (as mcimctl attest validate sends it).
[[nodiscard]] Result<Bytes> policy_digest(std::string_view policy_jws);

}  // namespace mcimd::op
