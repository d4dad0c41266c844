#pragma once
// The operator's half of TPM2_Import: MCIM secrets (K, OPc) made into TPM objects in software and
// wrapped for one device's SRK (TPM 2.0 Part 1 §23.3.2, "Duplication" with an outer wrapper and
// no inner one), so that only that TPM can import them, and only as the objects mcimd uses. Needs
// no TPM: tss2-mu marshalling and OpenSSL only.
//
// Both objects are bound the way mcimd's own are (tpm/seal.cpp): nameAlg SHA-256, authPolicy the
// caller's (for mcimd PolicyAuthorize(policy authority, kPcrPolicyRef)), adminWithPolicy and noDA
// set, userWithAuth clear (only the policy reaches them), decrypt clear. fixedTPM, fixedParent and
// sensitiveDataOrigin are clear, as TPM2_Import requires of any object it takes (Part 3 §13.3).
//
// The duplication, with the parent's nameAlg and symmetric definition:
//   sensitive = TPMT_SENSITIVE{type, authValue empty, seedValue 32 fresh random bytes, secret}
//   unique    = SHA-256(seedValue ‖ secret): binds the public area to the sensitive one
//   name      = 0x000B ‖ SHA-256(marshaled TPMT_PUBLIC)
//   seed, encSensitive = AES-CFB(symKey, 0, TPM2B_SENSITIVE) and its outer HMAC over
//   encSensitive ‖ name: wrap_for_storage_key(parent, "DUPLICATE", name, TPM2B_SENSITIVE)
//   duplicate = TPM2B_PRIVATE(TPM2B_DIGEST(outerHMAC) ‖ encSensitive), seed as TPM2B_ENCRYPTED_SECRET
// The parent (parent_public, a marshaled TPM2B_PUBLIC: ECC P-256/P-384 or RSA 2048–4096) must be a
// storage key (check_storage_key), else InvalidArgument naming why. Secrets are wiped after use.
#include <cstdint>
#include <span>

#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::attestation {

// The parent (a device's SRK) parsed and checked once, for every blob of a package: parsing
// validates the public key, which costs as much as an ECDH. InvalidArgument when it is not a
// storage key.
struct ImportParent {
  TpmPublic key;
};
[[nodiscard]] Result<ImportParent> import_parent(std::span<const uint8_t> parent_public);

// K as a TPM AES-128 key object that behaves in TPM2_EncryptDecrypt2 as Context::create_aes_key's:
// TPM_ALG_SYMCIPHER, AES-128, mode ECB, sign (= encrypt for a symmetric key) set, decrypt clear.
// InvalidArgument for a key that is not 16 bytes or an auth_policy that is not 32 bytes.
[[nodiscard]] Result<protocol::ImportBlob> make_aes_key_import(std::span<const uint8_t> parent_public,
                                                               std::span<const uint8_t> aes_key,
                                                               std::span<const uint8_t> auth_policy);

[[nodiscard]] Result<protocol::ImportBlob> make_aes_key_import(const ImportParent& parent,
                                                               std::span<const uint8_t> aes_key,
                                                               std::span<const uint8_t> auth_policy);

// Sealed data (OPc) as a KEYEDHASH object with scheme NULL, sign and decrypt clear, as
// Context::seal makes them. InvalidArgument for data that is not 1–128 bytes (MAX_SYM_DATA) or an
// auth_policy that is not 32 bytes.
[[nodiscard]] Result<protocol::ImportBlob> make_sealed_import(std::span<const uint8_t> parent_public,
                                                              std::span<const uint8_t> data,
                                                              std::span<const uint8_t> auth_policy);

[[nodiscard]] Result<protocol::ImportBlob> make_sealed_import(const ImportParent& parent,
                                                              std::span<const uint8_t> data,
                                                              std::span<const uint8_t> auth_policy);

// The TPM name of a parent key (the SRK) from its marshaled TPM2B_PUBLIC, as a package header
// names the key its blobs were made for. InvalidArgument when it is not a storage key.
[[nodiscard]] Result<Bytes> srk_name_of(std::span<const uint8_t> parent_public);

}  // namespace mcimd::attestation
