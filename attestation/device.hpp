#pragma once
// Device side of platform validation (3GPP TR 33.812 §6.1, the TRE proving the M2ME's state):
// evidence for an operator's nonce, quotes of documents in their domain, the enrolment request
// binding the AK to the EK, and semi-autonomous validation (platform_report.cpp).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "attestation/verifier_ek.hpp"
#include "protocol/evidence.hpp"
#include "protocol/quote_domain.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::attestation {

struct EvidenceOptions {
  // PCRs to quote in each bank.
  std::vector<unsigned> pcrs = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
  // Banks to quote ("sha256", ...); empty = every bank the TPM has allocated (TPM_CAP_PCRS).
  std::vector<std::string> banks;
  // Logs to include; a missing file is left out (many gateways have neither), an empty path is
  // not read at all.
  std::filesystem::path event_log_path = "/sys/kernel/security/tpm0/binary_bios_measurements";
  std::filesystem::path ima_log_path = "/sys/kernel/security/ima/ascii_runtime_measurements";
  bool include_ek_certificate = true;  // when the TPM holds one for ek_type
  tpm::EkType ek_type = tpm::EkType::EccP256;
  // Read-quote-read rounds before giving up while the PCRs keep moving. At least 1.
  unsigned max_attempts = 5;
  // Test seam: runs after the first PCR read of each attempt, before the quote (tests extend a
  // PCR here to play a measurement racing the quote).
  std::function<void(unsigned attempt)> before_quote;
};

// Quotes the selected PCRs with the AK in the operator-evidence domain — qualifyingData is
// protocol::qualifying_data(QuoteDomain::OperatorEvidence, nonce); evidence.nonce is the nonce
// itself (0–64 bytes) — and gathers what a verifier needs. Checks made before returning:
//  - the PCRs read before and after the quote are equal, and the quote's PCR digest is the hash
//    (with the signature's hash algorithm) of exactly the values reported, in the quote's order —
//    otherwise the round is redone, up to max_attempts, then Busy;
//  - the quote carries that qualifying data (TpmFailure otherwise).
// Logs are read after the quote, so they hold at least every event the quoted PCRs cover.
// Unreadable or oversized logs fail (IoError / InvalidArgument naming the path).
[[nodiscard]] Result<protocol::Evidence> collect_evidence(tpm::Context& tpm, const tpm::KeyBlob& ak,
                                                          std::span<const uint8_t> nonce,
                                                          const EvidenceOptions& options = {});

// A quote of `selection` with the AK in `domain` over `payload` (any size: the quote carries
// protocol::qualifying_data(domain, payload)). For documents the device binds to its platform
// state: the platform report, install and deletion receipts. Checks that the TPM's quote carries
// that qualifying data (TpmFailure otherwise); the caller checks the PCR digest against the values
// its document lists.
[[nodiscard]] Result<tpm::Quote> quote_payload(tpm::Context& tpm, const tpm::KeyBlob& ak, protocol::QuoteDomain domain,
                                               std::span<const uint8_t> payload,
                                               std::span<const tpm::PcrSelection> selection);

// EK public (from the default template of `ek_type`), its certificate when the TPM holds one,
// and the AK public, for an operator to answer with a credential challenge.
[[nodiscard]] Result<protocol::EnrolmentRequest> enrolment_request(tpm::Context& tpm, const tpm::KeyBlob& ak,
                                                                   tpm::EkType ek_type);

// Releases the secret of the operator's challenge (TPM2_ActivateCredential); see
// tpm::Context::activate_credential for the checks and errors.
[[nodiscard]] Result<SecureBytes> activate_credential(tpm::Context& tpm, const tpm::KeyBlob& ak, tpm::EkType ek_type,
                                                      const protocol::CredentialChallenge& challenge);

// --- semi-autonomous validation (TR 33.812 §6.1.3; platform_report.cpp) -------------------------
// The TRE evaluates an operator's signed reference policy against its own evidence and binds what
// it evaluated to a quote in the platform-report domain. The verdict in the report is
// informational; the operator evaluates the policy again on the values and logs the report
// carries (op::verify_report).

struct PlatformValidationOptions {
  std::string signed_policy;   // JWS compact, exactly as the operator issued it
  Bytes nonce;                 // the operator's challenge (1–64 bytes)
  EvidenceOptions evidence;    // what to quote and which logs to read
  unsigned max_attempts = 3;   // evaluate-then-quote rounds while the PCRs keep moving; at least 1
};

struct PlatformValidation {
  protocol::PlatformReport report;
  std::string report_json;  // the bytes the quote binds: send exactly these
  tpm::Quote quote;         // in the platform-report domain over report_json
};

// Checks, in order:
//   - the policy's JWS verifies against `trust` (NotAuthorized otherwise) and parses;
//   - evidence for the nonce is collected and verified against the policy (attestation::verify);
//     the report lists its checks, its verdict, the quoted PCR values, and the logs the policy
//     needs (ReferencePolicy::needs_event_log / needs_ima_log) when the device has them;
//   - the report is quoted with the same PCR selection in the platform-report domain, and the
//     quote's PCR digest must be the hash of the values the report lists — otherwise the PCRs
//     moved and the round is redone, up to max_attempts, then Busy.
[[nodiscard]] Result<PlatformValidation> validate_platform(tpm::Context& tpm, const tpm::KeyBlob& ak,
                                                           const CaBundle& trust,
                                                           const PlatformValidationOptions& options);

}  // namespace mcimd::attestation
