#include "attestation/duplication.hpp"

#include <openssl/rand.h>
#include <tss2/tss2_mu.h>

#include <cstring>
#include <new>
#include <string>

#include "attestation/credential.hpp"
#include "attestation/verifier_tpm.hpp"

namespace mcimd::attestation {

namespace {

// TPM 2.0 Part 2 MAX_SYM_DATA: the most a KEYEDHASH data object holds.
constexpr std::size_t kMaxSealedSize = 128;
constexpr std::size_t kAes128KeySize = 16;
// The objects' nameAlg is SHA-256: authPolicy, unique and seedValue are each one digest long.
constexpr std::size_t kDigestSize = 32;

// The parent as a storage key, or InvalidArgument saying why it cannot be one (also for a type or
// curve the verifier does not know, which parse_tpm_public calls Unsupported).
Result<TpmPublic> storage_parent(std::span<const uint8_t> parent_public) {
  auto parent = parse_tpm_public(parent_public);
  if (!parent) return fail(Code::InvalidArgument, "the parent key: " + parent.error().message);
  MCIMD_CHECK(check_storage_key(*parent, "the parent key"));
  return std::move(*parent);
}

// Builds the object around `secret` from `pub` (type, attributes that differ, parameters) and
// duplicates it for the parent.
Result<protocol::ImportBlob> duplicate_object(const TpmPublic& parent, TPMT_PUBLIC pub,
                                              std::span<const uint8_t> secret, std::span<const uint8_t> auth_policy) {
  if (auth_policy.size() != kDigestSize)
    return fail(Code::InvalidArgument, "An authPolicy is a SHA-256 digest (32 bytes), not " +
                                           std::to_string(auth_policy.size()) + " bytes");
  pub.nameAlg = TPM2_ALG_SHA256;
  // Only the policy reaches the object, for its user role (userWithAuth clear) and its admin role;
  // a power cut must never count against the dictionary-attack lockout.
  pub.objectAttributes |= TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_NODA;
  pub.authPolicy.size = kDigestSize;
  std::memcpy(pub.authPolicy.buffer, auth_policy.data(), kDigestSize);

  // The sensitive area lives in secure memory: locked, and wiped when freed however this returns.
  SecureBytes sensitive_storage(sizeof(TPM2B_SENSITIVE));
  auto& sensitive = *new (sensitive_storage.data()) TPM2B_SENSITIVE{};
  TPMT_SENSITIVE& s = sensitive.sensitiveArea;
  s.sensitiveType = pub.type;
  // The obfuscation value (seedValue): fresh for each object, so that two packages
  // with the same K or OPc have unrelated public areas.
  s.seedValue.size = kDigestSize;
  if (RAND_priv_bytes(s.seedValue.buffer, kDigestSize) != 1)
    return fail(Code::Internal, "RAND_priv_bytes: " + openssl_error());
  TPM2B_DIGEST* unique = nullptr;
  if (pub.type == TPM2_ALG_SYMCIPHER) {
    s.sensitive.sym.size = static_cast<uint16_t>(secret.size());
    std::memcpy(s.sensitive.sym.buffer, secret.data(), secret.size());
    unique = &pub.unique.sym;
  } else {
    s.sensitive.bits.size = static_cast<uint16_t>(secret.size());
    std::memcpy(s.sensitive.bits.buffer, secret.data(), secret.size());
    unique = &pub.unique.keyedHash;
  }
  // Part 2 TPMU_PUBLIC_ID: a symmetric or keyed-hash object's unique is H_nameAlg(seedValue ‖
  // sensitive); TPM2_Import checks it (TPM_RC_BINDING otherwise).
  SecureBytes bound;
  bound.reserve(s.seedValue.size + secret.size());  // one locked allocation, not one per growth
  bound.insert(bound.end(), s.seedValue.buffer, s.seedValue.buffer + s.seedValue.size);
  bound.insert(bound.end(), secret.begin(), secret.end());
  const Bytes digest = MCIMD_TRY(hash(alg::kSha256, bound));
  unique->size = kDigestSize;
  std::memcpy(unique->buffer, digest.data(), kDigestSize);

  TPM2B_PUBLIC public_2b{};
  public_2b.publicArea = pub;
  Bytes public_area(sizeof(TPM2B_PUBLIC));
  std::size_t offset = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Marshal(&public_2b, public_area.data(), public_area.size(), &offset) != TSS2_RC_SUCCESS)
    return fail(Code::Internal, "Failed to marshal the object's public area");
  public_area.resize(offset);
  const Bytes name = MCIMD_TRY(tpm_name(TPM2_ALG_SHA256, std::span<const uint8_t>(public_area).subspan(2)));

  SecureBytes plain(sizeof(TPM2B_SENSITIVE));
  offset = 0;
  if (Tss2_MU_TPM2B_SENSITIVE_Marshal(&sensitive, plain.data(), plain.size(), &offset) != TSS2_RC_SUCCESS)
    return fail(Code::Internal, "Failed to marshal the object's sensitive area");
  plain.resize(offset);
  // Part 1 §23.3.2.3: no inner wrapper, so the outer one protects TPM2B_SENSITIVE itself.
  OuterWrap wrap = MCIMD_TRY(wrap_for_storage_key(parent, "DUPLICATE", name, plain));
  return protocol::ImportBlob{std::move(public_area), std::move(wrap.wrapped), std::move(wrap.encrypted_seed)};
}

}  // namespace

Result<ImportParent> import_parent(std::span<const uint8_t> parent_public) {
  return ImportParent{MCIMD_TRY(storage_parent(parent_public))};
}

Result<protocol::ImportBlob> make_aes_key_import(std::span<const uint8_t> parent_public,
                                                 std::span<const uint8_t> aes_key,
                                                 std::span<const uint8_t> auth_policy) {
  return make_aes_key_import(MCIMD_TRY(import_parent(parent_public)), aes_key, auth_policy);
}

Result<protocol::ImportBlob> make_sealed_import(std::span<const uint8_t> parent_public,
                                                std::span<const uint8_t> data,
                                                std::span<const uint8_t> auth_policy) {
  return make_sealed_import(MCIMD_TRY(import_parent(parent_public)), data, auth_policy);
}

Result<protocol::ImportBlob> make_aes_key_import(const ImportParent& parent, std::span<const uint8_t> aes_key,
                                                 std::span<const uint8_t> auth_policy) {
  if (aes_key.size() != kAes128KeySize)
    return fail(Code::InvalidArgument, "An AES-128 key is 16 bytes, not " + std::to_string(aes_key.size()));
  TPMT_PUBLIC pub{};
  pub.type = TPM2_ALG_SYMCIPHER;
  // For a symmetric key, sign means encrypt (Part 2 §8.3 TPMA_OBJECT); decrypt stays clear:
  // Milenage only ever encrypts (TS 35.206 §4.1).
  pub.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT;
  pub.parameters.symDetail.sym.algorithm = TPM2_ALG_AES;
  pub.parameters.symDetail.sym.keyBits.aes = 128;
  pub.parameters.symDetail.sym.mode.aes = TPM2_ALG_ECB;  // E_K on single blocks, nothing more
  return duplicate_object(parent.key, pub, aes_key, auth_policy);
}

Result<protocol::ImportBlob> make_sealed_import(const ImportParent& parent, std::span<const uint8_t> data,
                                                std::span<const uint8_t> auth_policy) {
  if (data.empty() || data.size() > kMaxSealedSize)
    return fail(Code::InvalidArgument, "Sealed data must be 1 to 128 bytes, not " + std::to_string(data.size()));
  TPMT_PUBLIC pub{};
  pub.type = TPM2_ALG_KEYEDHASH;
  pub.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;  // a data blob, not an HMAC key
  return duplicate_object(parent.key, pub, data, auth_policy);
}

Result<Bytes> srk_name_of(std::span<const uint8_t> parent_public) {
  TpmPublic parent = MCIMD_TRY(storage_parent(parent_public));
  return parent.name;
}

}  // namespace mcimd::attestation
