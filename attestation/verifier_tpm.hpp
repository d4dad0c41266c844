#pragma once
// TPM structures as the verifier sees them: parsed from their marshaled form (tss2-mu only, no
// TPM access), public areas turned into OpenSSL keys, quotes parsed, signatures checked.
#include <openssl/evp.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/c_handle.hpp"
#include "common/error.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::attestation {

using EvpPkey = CHandle<EVP_PKEY, EVP_PKEY_free>;

// TPM 2.0 Part 2 §6.3 TPM_ALG_ID values the verifier understands.
namespace alg {
inline constexpr uint16_t kRsa = 0x0001;
inline constexpr uint16_t kSha1 = 0x0004;
inline constexpr uint16_t kAes = 0x0006;
inline constexpr uint16_t kSha256 = 0x000B;
inline constexpr uint16_t kSha384 = 0x000C;
inline constexpr uint16_t kSha512 = 0x000D;
inline constexpr uint16_t kNull = 0x0010;
inline constexpr uint16_t kRsassa = 0x0014;
inline constexpr uint16_t kRsapss = 0x0016;
inline constexpr uint16_t kEcdsa = 0x0018;
inline constexpr uint16_t kEcc = 0x0023;
inline constexpr uint16_t kCfb = 0x0043;
}  // namespace alg

// TPM 2.0 Part 2 §8.3 TPMA_OBJECT bits.
namespace attr {
inline constexpr uint32_t kFixedTpm = 0x00000002;
inline constexpr uint32_t kFixedParent = 0x00000010;
inline constexpr uint32_t kSensitiveDataOrigin = 0x00000020;
inline constexpr uint32_t kRestricted = 0x00010000;
inline constexpr uint32_t kDecrypt = 0x00020000;
inline constexpr uint32_t kSign = 0x00040000;
}  // namespace attr

// "sha1" ↔ TPM_ALG_SHA1 and so on; unknown names/ids → InvalidArgument / empty name.
[[nodiscard]] Result<uint16_t> hash_alg_from_name(std::string_view bank);
std::string hash_alg_name(uint16_t hash_alg);
// Digest size in bytes of a hash algorithm, 0 when unknown.
std::size_t hash_size(uint16_t hash_alg);
// H(data) with a TPM hash algorithm.
[[nodiscard]] Result<Bytes> hash(uint16_t hash_alg, std::span<const uint8_t> data);

// Part 1 §16: an object's Name, nameAlg (big-endian) ‖ H_nameAlg(marshaled TPMT_PUBLIC).
// Unsupported for an unknown nameAlg.
[[nodiscard]] Result<Bytes> tpm_name(uint16_t name_alg, std::span<const uint8_t> tpmt_public);

// A TPM2B_PUBLIC (RSA or ECC) with what the verifier needs from it.
struct TpmPublic {
  uint16_t type = 0;         // alg::kRsa | alg::kEcc
  uint16_t name_alg = 0;
  uint32_t attributes = 0;   // TPMA_OBJECT
  uint16_t scheme = alg::kNull;       // signing/decrypt scheme
  uint16_t scheme_hash = alg::kNull;
  uint16_t symmetric = alg::kNull;    // storage keys (EKs): inner wrapper algorithm
  uint16_t symmetric_bits = 0;
  uint16_t symmetric_mode = alg::kNull;
  uint16_t curve = 0;        // TPM_ECC_CURVE for ECC keys
  uint16_t rsa_bits = 0;
  Bytes ecc_x, ecc_y;        // as stored in unique (TPM2B contents)
  Bytes name;                // nameAlg ‖ H_nameAlg(TPMT_PUBLIC)
  EvpPkey key;               // the public key for OpenSSL
};

// Parses a marshaled TPM2B_PUBLIC. Checks: the TPM2B size covers the buffer exactly, the type is
// RSA or ECC, nameAlg is a known hash, the ECC curve is NIST P-256 or P-384, the RSA modulus is
// 2048..4096 bits, and the key is a valid public key for OpenSSL.
[[nodiscard]] Result<TpmPublic> parse_tpm_public(std::span<const uint8_t> tpm2b_public);

// Restricted signing key requirements for an attestation key (TCG EK/AK profiles). Checks:
// fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign set; decrypt clear; ECC P-256 with
// ECDSA, or RSA with RSASSA or RSAPSS; scheme hash SHA-256. The error names every missing
// requirement.
[[nodiscard]] Status check_attestation_key(const TpmPublic& ak);

// A storage key (Part 1 §23.3.1 / §24.1: what may be a parent or an EK): restricted and decrypt
// set, sign clear, AES-CFB (128, 192 or 256 bits) for its children. InvalidArgument "<what> is not
// a restricted decryption (storage) key: …" naming every requirement it misses.
[[nodiscard]] Status check_storage_key(const TpmPublic& key, std::string_view what);

// TPMS_CLOCK_INFO.
struct ClockInfo {
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
  bool operator==(const ClockInfo&) const = default;
};

// One TPMS_PCR_SELECTION: a bank and its selected PCR indices in ascending order.
struct PcrSelection {
  uint16_t hash_alg = 0;
  std::vector<unsigned> pcrs;
};

// A parsed TPMS_ATTEST (any type; selection/pcr_digest filled for quotes).
struct Attest {
  uint32_t magic = 0;
  uint16_t type = 0;
  Bytes qualified_signer;
  Bytes extra_data;
  ClockInfo clock;
  uint64_t firmware_version = 0;
  std::vector<PcrSelection> selection;
  Bytes pcr_digest;
  Bytes certified_name;            // TPM_ST_ATTEST_CERTIFY: TPMS_CERTIFY_INFO name
  Bytes certified_qualified_name;  // and qualifiedName
};
inline constexpr uint32_t kTpmGeneratedValue = 0xff544347;  // Part 2 §6.2 TPM_GENERATED_VALUE
inline constexpr uint16_t kTpmStAttestCertify = 0x8017;     // Part 2 §6.9 TPM_ST_ATTEST_CERTIFY
inline constexpr uint16_t kTpmStAttestQuote = 0x8018;       // Part 2 §6.9 TPM_ST_ATTEST_QUOTE

// Parses a marshaled TPMS_ATTEST (the bytes tpm2_quote -m writes); trailing bytes are refused.
[[nodiscard]] Result<Attest> parse_attest(std::span<const uint8_t> tpms_attest);

// Checks a marshaled TPMT_SIGNATURE over message with key: ECDSA (P-256/P-384) or RSASSA/RSAPSS,
// hash SHA-256 (also SHA-384/512), the signature algorithm compatible with the key, and, when
// the key has a fixed scheme, the same scheme and hash. Returns the signature's hash algorithm.
[[nodiscard]] Result<uint16_t> verify_signature(const TpmPublic& key, std::span<const uint8_t> message,
                                                std::span<const uint8_t> tpmt_signature);

// The device's SRK certified by its AK (TPM2_Certify, Part 3 §18.2), as an operator checks it
// before it makes an MCIM package for that SRK. Checks, in this order; a refusal's message starts
// "SRK certification refused: <check>:" and says why:
//   ak          ak_public parses and is an attestation key (check_attestation_key)   InvalidArgument
//   srk         srk_public is a storage key as mcimd's TPMs have it: ECC NIST P-256 or RSA-2048,
//               restricted decryption, sign clear, AES-128-CFB, fixedTPM, fixedParent and
//               sensitiveDataOrigin set (its private key never existed outside that TPM)   InvalidArgument
//   format      the message is a well-formed TPMS_ATTEST                             InvalidArgument
//   signature   the TPMT_SIGNATURE verifies with the AK over the message             SignatureInvalid
//   magic       magic is TPM_GENERATED_VALUE                                          InvalidArgument
//   type        type is TPM_ST_ATTEST_CERTIFY                                         InvalidArgument
//   qualifying_data  extraData equals expected_qualifying_data (for mcimd:
//               qualifying_data(SrkCertification, operator nonce ‖ device nonce))   Replayed
//   name        the certified name is srk_public's: the certification is for that key  WrongDevice
// Returns the attestation's clock info, for check_clock against the device's last.
[[nodiscard]] Result<ClockInfo> verify_srk_certification(std::span<const uint8_t> ak_public,
                                                         const protocol::Certification& certification,
                                                         std::span<const uint8_t> srk_public,
                                                         std::span<const uint8_t> expected_qualifying_data);

// The last OpenSSL error queue entry as text (and clears the queue).
std::string openssl_error();

}  // namespace mcimd::attestation
