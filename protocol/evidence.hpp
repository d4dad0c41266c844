#pragma once
// What travels between the device (attestation/device) and an operator's verifier
// (attestation/verifier): the evidence document and the enrolment messages. JSON, binary fields
// base64url, TPM structures in their marshaled TPM2B/TPMS/TPMT form so any TPM tool reads them.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::protocol {

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
std::string to_json(const EnrolmentRequest& r);
[[nodiscard]] Result<EnrolmentRequest> enrolment_request_from_json(std::string_view text);
std::string to_json(const CredentialChallenge& c);
[[nodiscard]] Result<CredentialChallenge> credential_challenge_from_json(std::string_view text);

}  // namespace mcimd::protocol
