#include "attestation/credential.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <tss2/tss2_tpm2_types.h>

namespace mcimd::attestation {

namespace {

using EvpPkeyCtx = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EvpCipherCtx = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

const EVP_MD* md_of(uint16_t hash_alg) {
  switch (hash_alg) {
    case alg::kSha1: return EVP_sha1();
    case alg::kSha256: return EVP_sha256();
    case alg::kSha384: return EVP_sha384();
    case alg::kSha512: return EVP_sha512();
    default: return nullptr;
  }
}

void put_u16(Bytes& out, std::size_t v) {
  out.push_back(uint8_t(v >> 8));
  out.push_back(uint8_t(v));
}
void put_u32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(uint8_t(v >> shift));
}
void put_tpm2b(Bytes& out, std::span<const uint8_t> data) {
  put_u16(out, data.size());
  out.insert(out.end(), data.begin(), data.end());
}

Bytes label_bytes(std::string_view label) {
  // Part 1 §11.4.10.4: labels are NUL-terminated and the NUL is part of the input.
  Bytes b(label.begin(), label.end());
  b.push_back(0);
  return b;
}

// Part 1 Annex B.10.3: RSA-OAEP with the parent's nameAlg and the label with its NUL.
Result<Bytes> rsa_seed(const TpmPublic& parent, std::string_view label, SecureBytes& seed) {
  std::size_t n = hash_size(parent.name_alg);
  seed.resize(n);
  if (RAND_priv_bytes(seed.data(), static_cast<int>(n)) != 1)
    return fail(Code::Internal, "RAND_priv_bytes: " + openssl_error());
  EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, parent.key.get(), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md_of(parent.name_alg)) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md_of(parent.name_alg)) <= 0)
    return fail(Code::Internal, "RSA-OAEP setup: " + openssl_error());
  const Bytes lab = label_bytes(label);  // the TPM expects the NUL as part of the label
  auto* owned = static_cast<unsigned char*>(OPENSSL_memdup(lab.data(), lab.size()));
  if (!owned || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), owned, static_cast<int>(lab.size())) <= 0) {
    OPENSSL_free(owned);
    return fail(Code::Internal, "RSA-OAEP label: " + openssl_error());
  }
  std::size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, seed.data(), seed.size()) <= 0)
    return fail(Code::Internal, "RSA-OAEP: " + openssl_error());
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, seed.data(), seed.size()) <= 0)
    return fail(Code::Internal, "RSA-OAEP: " + openssl_error());
  out.resize(len);
  return out;
}

// Part 1 Annex C.6.1: one-pass ECDH with an ephemeral key Qe; the secret is Qe, marshaled as a
// TPMS_ECC_POINT.
Result<Bytes> ecc_seed(const TpmPublic& parent, std::string_view label, SecureBytes& seed) {
  const char* group = parent.curve == 0x0003 ? "P-256" : parent.curve == 0x0004 ? "P-384" : nullptr;
  std::size_t size = parent.curve == 0x0003 ? 32 : 48;
  if (!group) return fail(Code::Unsupported, "parent key's ECC curve unsupported");
  EvpPkey eph(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group));
  if (!eph) return fail(Code::Internal, "ephemeral EC key: " + openssl_error());
  EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, eph.get(), nullptr));
  std::size_t zlen = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 || EVP_PKEY_derive_set_peer(ctx.get(), parent.key.get()) <= 0 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &zlen) <= 0)
    return fail(Code::Internal, "ECDH: " + openssl_error());
  SecureBytes z(zlen);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &zlen) <= 0) return fail(Code::Internal, "ECDH: " + openssl_error());
  z.resize(zlen);  // the x-coordinate of the shared point, field-size bytes
  // Qe as its uncompressed encoding 04 ‖ x ‖ y: one call, where reading x and y as numbers
  // rebuilds the curve for each.
  uint8_t encoded[1 + 2 * 48];
  std::size_t encoded_len = 0;
  if (!EVP_PKEY_get_octet_string_param(eph.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, encoded, sizeof encoded,
                                       &encoded_len) ||
      encoded_len != 1 + 2 * size || encoded[0] != 0x04)
    return fail(Code::Internal, "ephemeral EC point: " + openssl_error());
  Bytes qx(encoded + 1, encoded + 1 + size);
  Bytes qy(encoded + 1 + size, encoded + 1 + 2 * size);
  seed = MCIMD_TRY(kdfe(parent.name_alg, z, label, qx, parent.ecc_x, uint32_t(hash_size(parent.name_alg) * 8)));
  Bytes point;
  put_tpm2b(point, qx);
  put_tpm2b(point, qy);
  return point;
}

const EVP_CIPHER* aes_cfb(uint16_t bits) {
  switch (bits) {
    case 128: return EVP_aes_128_cfb128();
    case 192: return EVP_aes_192_cfb128();
    case 256: return EVP_aes_256_cfb128();
    default: return nullptr;
  }
}

}  // namespace

Result<SecureBytes> kdfa(uint16_t hash_alg, std::span<const uint8_t> key, std::string_view label,
                         std::span<const uint8_t> context_u, std::span<const uint8_t> context_v, uint32_t bits) {
  const EVP_MD* md = md_of(hash_alg);
  if (!md || bits % 8 != 0 || bits == 0) return fail(Code::InvalidArgument, "KDFa: bad hash or size");
  Bytes lab = label_bytes(label);
  SecureBytes out;
  out.reserve(bits / 8 + EVP_MAX_MD_SIZE);
  for (uint32_t counter = 1; out.size() < bits / 8; ++counter) {
    Bytes input;
    put_u32(input, counter);
    input.insert(input.end(), lab.begin(), lab.end());
    input.insert(input.end(), context_u.begin(), context_u.end());
    input.insert(input.end(), context_v.begin(), context_v.end());
    put_u32(input, bits);
    unsigned char block[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!HMAC(md, key.data(), static_cast<int>(key.size()), input.data(), input.size(), block, &len))
      return fail(Code::Internal, "HMAC: " + openssl_error());
    out.insert(out.end(), block, block + len);
    OPENSSL_cleanse(block, sizeof block);
  }
  out.resize(bits / 8);
  return out;
}

Result<SecureBytes> kdfe(uint16_t hash_alg, std::span<const uint8_t> z, std::string_view label,
                         std::span<const uint8_t> party_u, std::span<const uint8_t> party_v, uint32_t bits) {
  const EVP_MD* md = md_of(hash_alg);
  if (!md || bits % 8 != 0 || bits == 0) return fail(Code::InvalidArgument, "KDFe: bad hash or size");
  Bytes lab = label_bytes(label);
  // Each SecureBytes allocation is an mlock: size them once rather than let them grow.
  SecureBytes out;
  out.reserve(bits / 8 + EVP_MAX_MD_SIZE);
  SecureBytes input;
  input.reserve(4 + z.size() + lab.size() + party_u.size() + party_v.size());
  for (uint32_t counter = 1; out.size() < bits / 8; ++counter) {
    input.clear();
    for (int shift = 24; shift >= 0; shift -= 8) input.push_back(uint8_t(counter >> shift));
    input.insert(input.end(), z.begin(), z.end());
    input.insert(input.end(), lab.begin(), lab.end());
    input.insert(input.end(), party_u.begin(), party_u.end());
    input.insert(input.end(), party_v.begin(), party_v.end());
    unsigned char block[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!EVP_Digest(input.data(), input.size(), block, &len, md, nullptr))
      return fail(Code::Internal, "EVP_Digest: " + openssl_error());
    out.insert(out.end(), block, block + len);
    OPENSSL_cleanse(block, sizeof block);
  }
  out.resize(bits / 8);
  return out;
}

Result<Bytes> ak_name(std::span<const uint8_t> ak_public) {
  TpmPublic pub = MCIMD_TRY(parse_tpm_public(ak_public));
  return pub.name;
}

Result<OuterWrap> wrap_for_storage_key(const TpmPublic& parent, std::string_view label,
                                       std::span<const uint8_t> name, std::span<const uint8_t> payload) {
  MCIMD_CHECK(check_storage_key(parent, "the parent key"));
  const std::size_t digest_size = hash_size(parent.name_alg);
  if (name.size() < 2 || name.size() - 2 != hash_size(uint16_t((name[0] << 8) | name[1])))
    return fail(Code::InvalidArgument, "the protected object's name is not nameAlg ‖ digest");
  // What TPM2B_PRIVATE, the larger of the two wrapped outputs, can hold besides the outer HMAC.
  constexpr std::size_t kWrappedMax = sizeof(TPM2B_PRIVATE::buffer);
  if (payload.empty() || 2 + digest_size + payload.size() > kWrappedMax)
    return fail(Code::InvalidArgument,
                "a protected payload must be 1.." + std::to_string(kWrappedMax - 2 - digest_size) + " bytes");

  SecureBytes seed;
  Bytes encrypted_seed =
      parent.type == alg::kRsa ? MCIMD_TRY(rsa_seed(parent, label, seed)) : MCIMD_TRY(ecc_seed(parent, label, seed));

  // Part 1 §24.4 / §23.3.2.3: the payload encrypted with symKey, CFB, IV 0.
  SecureBytes sym_key = MCIMD_TRY(kdfa(parent.name_alg, seed, "STORAGE", name, {}, parent.symmetric_bits));
  Bytes encrypted(payload.size());
  EvpCipherCtx cipher(EVP_CIPHER_CTX_new());
  const uint8_t iv[16] = {};
  int len1 = 0, len2 = 0;
  if (!cipher || EVP_EncryptInit_ex(cipher.get(), aes_cfb(parent.symmetric_bits), nullptr, sym_key.data(), iv) != 1 ||
      EVP_EncryptUpdate(cipher.get(), encrypted.data(), &len1, payload.data(), static_cast<int>(payload.size())) != 1 ||
      EVP_EncryptFinal_ex(cipher.get(), encrypted.data() + len1, &len2) != 1)
    return fail(Code::Internal, "AES-CFB: " + openssl_error());

  // Part 1 §24.5 / §23.3.2.3: outerHMAC = HMAC(HMACkey, encrypted ‖ Name).
  SecureBytes hmac_key = MCIMD_TRY(kdfa(parent.name_alg, seed, "INTEGRITY", {}, {}, uint32_t(digest_size * 8)));
  Bytes mac_input = encrypted;
  mac_input.insert(mac_input.end(), name.begin(), name.end());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  if (!HMAC(md_of(parent.name_alg), hmac_key.data(), static_cast<int>(hmac_key.size()), mac_input.data(),
            mac_input.size(), mac, &mac_len))
    return fail(Code::Internal, "HMAC: " + openssl_error());

  Bytes inner;
  put_tpm2b(inner, {mac, mac_len});
  inner.insert(inner.end(), encrypted.begin(), encrypted.end());
  OuterWrap out;
  put_tpm2b(out.wrapped, inner);
  put_tpm2b(out.encrypted_seed, encrypted_seed);
  return out;
}

Result<protocol::CredentialChallenge> make_credential(std::span<const uint8_t> ek_public,
                                                      std::span<const uint8_t> name,
                                                      std::span<const uint8_t> secret) {
  TpmPublic ek = MCIMD_TRY(parse_tpm_public(ek_public));
  MCIMD_CHECK(check_storage_key(ek, "EK"));
  const std::size_t digest_size = hash_size(ek.name_alg);
  if (secret.empty() || secret.size() > digest_size)
    return fail(Code::InvalidArgument, "credential secret must be 1.." + std::to_string(digest_size) + " bytes");
  // §24.4: the credential travels as a TPM2B_DIGEST.
  SecureBytes plain;
  plain.push_back(uint8_t(secret.size() >> 8));
  plain.push_back(uint8_t(secret.size()));
  plain.insert(plain.end(), secret.begin(), secret.end());
  OuterWrap wrap = MCIMD_TRY(wrap_for_storage_key(ek, "IDENTITY", name, plain));
  return protocol::CredentialChallenge{std::move(wrap.wrapped), std::move(wrap.encrypted_seed)};
}

Bytes to_tpm2_tools_credential(const protocol::CredentialChallenge& challenge) {
  Bytes out;
  put_u32(out, 0xBADCC0DE);  // tpm2-tools files_write_header magic
  put_u32(out, 1);
  out.insert(out.end(), challenge.credential_blob.begin(), challenge.credential_blob.end());
  out.insert(out.end(), challenge.encrypted_secret.begin(), challenge.encrypted_secret.end());
  return out;
}

}  // namespace mcimd::attestation
