#pragma once
// Reading the TPM structures evidence carries, without a TPM (tss2-mu and OpenSSL only): what a
// quote says, the PCR digest it should carry, object names. Shared by the device (to check its
// own evidence before sending it) and the verifier.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/evidence.hpp"

namespace mcimd::protocol {

// Digest size of a PCR bank / hash name ("sha1", "sha256", "sha384", "sha512"); nullopt otherwise.
std::optional<std::size_t> digest_size(std::string_view bank);

struct QuotedBank {
  std::string bank;           // "sha1" | "sha256" | "sha384" | "sha512"
  std::vector<unsigned> pcrs;  // ascending
  bool operator==(const QuotedBank&) const = default;
};

// The fields of a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (TPM 2.0 Part 2 §10.12.12).
struct QuoteInfo {
  Bytes qualified_signer;   // qualified name of the signing key
  Bytes nonce;              // extraData: the qualifyingData of TPM2_Quote
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
  uint64_t firmware_version = 0;
  std::vector<QuotedBank> selection;  // in the quote's order
  Bytes pcr_digest;
};

// Parses a marshaled TPMS_ATTEST. InvalidArgument when it does not unmarshal completely, lacks
// TPM_GENERATED_VALUE (so the TPM did not make it), is not a quote, or selects a bank other than
// sha1/sha256/sha384/sha512 or a PCR above 23.
[[nodiscard]] Result<QuoteInfo> parse_quote_message(std::span<const uint8_t> tpms_attest);

// The hash algorithm ("sha256", ...) a marshaled TPMT_SIGNATURE was made with; TPM2_Quote
// computes the PCR digest with the same one (Part 3 §18.4). InvalidArgument for a malformed or
// unsupported signature.
[[nodiscard]] Result<std::string> signature_hash(std::span<const uint8_t> tpmt_signature);

// H(value ‖ value ‖ ...) over `pcrs` in the order `selection` lists them (Part 3 §18.4).
// InvalidArgument naming the PCR when a selected value is missing or has the wrong size.
[[nodiscard]] Result<Bytes> pcr_digest(const std::vector<QuotedBank>& selection, const std::vector<PcrBank>& pcrs,
                                       std::string_view hash);

// The TPM name of an object from its marshaled TPM2B_PUBLIC: nameAlg (big-endian) ‖
// H_nameAlg(marshaled TPMT_PUBLIC) (Part 1 §16). InvalidArgument for a malformed public area.
[[nodiscard]] Result<Bytes> object_name(std::span<const uint8_t> tpm2b_public);

}  // namespace mcimd::protocol
