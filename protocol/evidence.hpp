#pragma once
// What travels between the device (attestation/device) and an operator's verifier
// (attestation/verifier): the evidence document and the enrolment messages. JSON, binary fields
// base64url, TPM structures in their marshaled TPM2B/TPMS/TPMT form so any TPM tool reads them.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::protocol {

// Size limits a parser enforces (InvalidArgument naming the field beyond them).
inline constexpr std::size_t kMaxNonceSize = 64;              // a SHA-512 digest; TPM2B_DATA holds 66
inline constexpr std::size_t kMaxTpmStructureSize = 4096;     // marshaled public areas, attests, signatures
inline constexpr std::size_t kMaxEkCertificateSize = 16384;   // DER; vendor EK certificates are 1–2 KiB
inline constexpr std::size_t kMaxEventLogSize = 4u << 20;     // firmware logs are tens of KiB
inline constexpr std::size_t kMaxImaLogSize = 16u << 20;      // IMA lists grow with every file measured
inline constexpr std::size_t kMaxDocumentSize = 32u << 20;    // whole JSON text

// PCR values of one bank, by index.
struct PcrBank {
  std::string bank;  // "sha1" | "sha256" | "sha384" | "sha512"
  std::map<unsigned, Bytes> values;
  bool operator==(const PcrBank&) const = default;
};

struct Evidence {
  Bytes nonce;                    // the operator's challenge (qualifyingData of the quote)
  Bytes quote_message;            // marshaled TPMS_ATTEST (as tpm2_quote -m writes it)
  Bytes quote_signature;          // marshaled TPMT_SIGNATURE (as tpm2_quote -s writes it)
  std::vector<PcrBank> pcrs;      // the quoted PCRs' values, read consistently with the quote
  Bytes ak_public;                // marshaled TPM2B_PUBLIC of the attestation key
  std::optional<Bytes> ek_certificate;  // DER, from the TPM's EK certificate NV index
  std::optional<Bytes> event_log;       // TCG PC Client binary (crypto-agile) event log
  std::optional<std::string> ima_log;   // IMA ASCII measurement list
  bool operator==(const Evidence&) const = default;
};

// JSON document {"format":"mcimd-evidence-1", ...}; parsing is strict: unknown or missing
// fields, wrong types and oversized members → InvalidArgument naming the field.
//   {"format": "mcimd-evidence-1", "nonce": B64, "quote_message": B64, "quote_signature": B64,
//    "pcrs": [{"bank": "sha256", "values": {"0": B64, ...}}, ...], "ak_public": B64,
//    "ek_certificate": B64?, "event_log": B64?, "ima_log": B64?}
// B64 is base64url without padding. The IMA list travels base64url too: file names in it need
// not be UTF-8, which a JSON string must be. The parser also checks that the TPM structures
// unmarshal completely (TPM2B_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE), that PCR banks are known and
// unique, indices 0–23 and every value the bank's digest size.
std::string to_json(const Evidence& evidence);
[[nodiscard]] Result<Evidence> evidence_from_json(std::string_view text);

// The tpm2-tools trio that `tpm2_checkquote -u ak.pub -m MSG -s SIG -f PCRS -g sha256 -q NONCE`
// accepts unchanged: message and signature as above, PCR values in tpm2_quote's -o format.
struct Tpm2ToolsTrio {
  Bytes message;
  Bytes signature;
  Bytes pcrs;
};
[[nodiscard]] Result<Tpm2ToolsTrio> to_tpm2_tools(const Evidence& evidence);
// The PCR file is tpm2-tools 5.4's default "serialized" -o format (lib/pcr.c
// pcr_fwrite_serialized; the structures copied as they lie in memory of a little-endian host):
//   TPML_PCR_SELECTION   u32 count, then 16 × {u16 hash, u8 sizeofSelect, u8 pcrSelect[4], u8 pad}
//                        (132 octets; the quote's own selection, unused entries zero)
//   u32                  number N of TPML_DIGEST that follow
//   N × TPML_DIGEST      u32 count (≤ 8), then 8 × {u16 size, u8 buffer[64]} (532 octets each)
// all integers little-endian; the values in the quote's selection order (bank by bank, PCRs
// ascending), eight per TPML_DIGEST as TPM2_PCR_Read returns them.
// InvalidArgument when the evidence lacks a value the quote covers.
// Writes quote.msg, quote.sig, quote.pcrs and ak.pub (TPM2B_PUBLIC) into dir.
[[nodiscard]] Status write_tpm2_tools_files(const Evidence& evidence, const std::filesystem::path& dir);

// Enrolment (TPM2_MakeCredential / TPM2_ActivateCredential): the operator proves the AK lives
// in the same TPM as the EK by encrypting a secret only that TPM can release for that AK.
struct EnrolmentRequest {
  Bytes ek_public;                      // marshaled TPM2B_PUBLIC
  std::optional<Bytes> ek_certificate;  // DER
  Bytes ak_public;                      // marshaled TPM2B_PUBLIC
  bool operator==(const EnrolmentRequest&) const = default;
};
struct CredentialChallenge {
  Bytes credential_blob;    // marshaled TPM2B_ID_OBJECT
  Bytes encrypted_secret;   // marshaled TPM2B_ENCRYPTED_SECRET
  bool operator==(const CredentialChallenge&) const = default;
};
// {"format":"mcimd-enrolment-request-1","ek_public":B64,"ek_certificate":B64?,"ak_public":B64}
// {"format":"mcimd-credential-challenge-1","credential_blob":B64,"encrypted_secret":B64}
// Parsed as strictly as the evidence; the TPM structures must unmarshal completely.
std::string to_json(const EnrolmentRequest& r);
[[nodiscard]] Result<EnrolmentRequest> enrolment_request_from_json(std::string_view text);
std::string to_json(const CredentialChallenge& c);
[[nodiscard]] Result<CredentialChallenge> credential_challenge_from_json(std::string_view text);

// Semi-autonomous validation (TR 33.812 §6.1.3): the device checks a signed reference policy
// itself and reports what it evaluated. The report is bound to a TPM quote in the platform-report
// domain over the report's JSON bytes (protocol/quote_domain.hpp), and the quote covers the PCRs
// the report lists; the operator evaluates the policy again on those values and logs. The
// device's own verdict is informational: it comes from software that may be compromised.
//   {"format":"mcimd-platform-report-1","nonce":B64,"policy_digest":B64,"trusted":bool,
//    "checks":[{"name","passed","reason"}],"pcrs":[…as in the evidence…],
//    "event_log":B64?,"ima_log":B64?}
struct ReportCheck {
  std::string name;
  bool passed = false;
  std::string reason;
  bool operator==(const ReportCheck&) const = default;
};
struct PlatformReport {
  Bytes nonce;                    // the operator's challenge
  Bytes policy_digest;            // SHA-256 of the signed policy (JWS compact) the device evaluated
  bool trusted = false;           // the device's verdict: every check it made passed (informational)
  std::vector<ReportCheck> checks;
  std::vector<PcrBank> pcrs;      // the values evaluated; the quote's PCR digest covers them
  // The logs the policy's rules need (the device includes them when it has them): the firmware
  // event log for variable/application rules or require_event_log, the IMA list for require_ima_log.
  std::optional<Bytes> event_log;
  std::optional<std::string> ima_log;
  bool operator==(const PlatformReport&) const = default;
};
std::string to_json(const PlatformReport& report);
[[nodiscard]] Result<PlatformReport> platform_report_from_json(std::string_view text);

}  // namespace mcimd::protocol
