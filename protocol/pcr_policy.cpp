// Signed PCR policies: the authority's key as a TPM public area, the PolicyPCR/PolicyAuthorize
// digests, the document, software signing and verification.
#include "protocol/pcr_policy.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstring>
#include <set>

#include "common/c_handle.hpp"
#include "common/file.hpp"
#include "protocol/quote.hpp"
#include "protocol/tpm_mu.hpp"

namespace mcimd::protocol {

namespace {

using json = nlohmann::json;
using EvpPkey = CHandle<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtx = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using Bio = CHandle<BIO, BIO_free>;
using Bignum = CHandle<BIGNUM, BN_free>;
using EcdsaSig = CHandle<ECDSA_SIG, ECDSA_SIG_free>;

constexpr std::string_view kFormat = "mcimd-pcr-policy-1";
constexpr std::size_t kMaxDocument = 64 * 1024;
constexpr unsigned kPcrCount = 24;          // PC Client Platform TPM Profile §4.6
constexpr std::size_t kP256Coordinate = 32;  // bytes of an x or y coordinate on NIST P-256
// Part 2 §6.5.2 command codes that enter policy digests.
constexpr uint32_t kCcPolicyPcr = 0x0000017F;
constexpr uint32_t kCcPolicyAuthorize = 0x0000016A;
constexpr uint32_t kCcPolicyNv = 0x00000149;  // Part 2 §6.5.2 TPM_CC_PolicyNV

Bytes sha256(std::span<const uint8_t> data) {
  Bytes out(SHA256_DIGEST_LENGTH);
  SHA256(data.data(), data.size(), out.data());
  return out;
}

void put_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void append(Bytes& out, std::span<const uint8_t> data) { out.insert(out.end(), data.begin(), data.end()); }

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "OpenSSL gave no reason";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

Result<EvpPkey> read_pem_key(std::string_view pem, bool want_private) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail(Code::Internal, "BIO_new_mem_buf: " + openssl_reason());
  EVP_PKEY* key = want_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                               : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (!key && !want_private) {
    // A private key file names its public half too.
    ERR_clear_error();
    Bio again(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    key = PEM_read_bio_PrivateKey(again.get(), nullptr, nullptr, nullptr);
  }
  if (!key)
    return fail(Code::InvalidArgument, std::string("Not a PEM ") + (want_private ? "private" : "public") +
                                           " key: " + openssl_reason());
  EvpPkey owned(key);
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) ||
      std::string_view(group) != "prime256v1")
    return fail(Code::InvalidArgument, "The policy authority key must be an ECC NIST P-256 key");
  return owned;
}

Result<Bytes> coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* raw = nullptr;
  if (!EVP_PKEY_get_bn_param(key, param, &raw)) return fail(Code::Internal, "EC point: " + openssl_reason());
  Bignum bn(raw);
  Bytes out(kP256Coordinate);
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(out.size())) < 0)
    return fail(Code::InvalidArgument, "EC coordinate does not fit 32 bytes");
  return out;
}

Result<TPM2B_PUBLIC> authority_public(EVP_PKEY* key) {
  auto x = MCIMD_TRY(coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X));
  auto y = MCIMD_TRY(coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y));
  TPM2B_PUBLIC pub{};
  auto& a = pub.publicArea;
  a.type = TPM2_ALG_ECC;
  a.nameAlg = TPM2_ALG_SHA256;
  // Verification only: fixedTPM/fixedParent stay clear, as TPM2_LoadExternal requires of a
  // public-only object (Part 3 §12.3).
  a.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH;
  a.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  a.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  a.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  a.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  a.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  a.unique.ecc.x.size = kP256Coordinate;
  std::memcpy(a.unique.ecc.x.buffer, x.data(), kP256Coordinate);
  a.unique.ecc.y.size = kP256Coordinate;
  std::memcpy(a.unique.ecc.y.buffer, y.data(), kP256Coordinate);
  return pub;
}

template <class T, auto Marshal>
Result<Bytes> marshal(const T& value, std::string_view what) {
  Bytes out(sizeof(T));
  size_t offset = 0;
  if (Marshal(&value, out.data(), out.size(), &offset) != TSS2_RC_SUCCESS)
    return fail(Code::Internal, "Failed to marshal " + std::string(what));
  out.resize(offset);
  return out;
}

// TPMT_SIGNATURE (ECDSA, SHA-256) ↔ DER ECDSA-Sig-Value as OpenSSL signs and verifies it.
Result<Bytes> der_from_tpmt(std::span<const uint8_t> tpmt) {
  auto sig = MCIMD_TRY((unmarshal<TPMT_SIGNATURE, Tss2_MU_TPMT_SIGNATURE_Unmarshal>(tpmt, "signature (TPMT_SIGNATURE)")));
  if (sig.sigAlg != TPM2_ALG_ECDSA || sig.signature.ecdsa.hash != TPM2_ALG_SHA256)
    return fail(Code::InvalidArgument, "The policy signature is not ECDSA with SHA-256");
  const auto& e = sig.signature.ecdsa;
  EcdsaSig der_sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(e.signatureR.buffer, e.signatureR.size, nullptr);
  BIGNUM* s = BN_bin2bn(e.signatureS.buffer, e.signatureS.size, nullptr);
  if (!der_sig || !r || !s || !ECDSA_SIG_set0(der_sig.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return fail(Code::Internal, "ECDSA_SIG: " + openssl_reason());
  }
  int len = i2d_ECDSA_SIG(der_sig.get(), nullptr);
  if (len <= 0) return fail(Code::Internal, "i2d_ECDSA_SIG: " + openssl_reason());
  Bytes out(static_cast<std::size_t>(len));
  uint8_t* p = out.data();
  i2d_ECDSA_SIG(der_sig.get(), &p);
  return out;
}

Result<Bytes> tpmt_from_der(std::span<const uint8_t> der) {
  const uint8_t* p = der.data();
  EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return fail(Code::Internal, "d2i_ECDSA_SIG: " + openssl_reason());
  TPMT_SIGNATURE t{};
  t.sigAlg = TPM2_ALG_ECDSA;
  t.signature.ecdsa.hash = TPM2_ALG_SHA256;
  auto& r = t.signature.ecdsa.signatureR;
  auto& s = t.signature.ecdsa.signatureS;
  r.size = s.size = kP256Coordinate;
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), r.buffer, r.size) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), s.buffer, s.size) < 0)
    return fail(Code::Internal, "ECDSA signature does not fit P-256");
  return marshal<TPMT_SIGNATURE, Tss2_MU_TPMT_SIGNATURE_Marshal>(t, "the policy signature");
}

// --- the document ------------------------------------------------------------------------------------
Result<Bytes> b64_value(const json& value, const std::string& where, std::size_t max, bool allow_empty) {
  if (!value.is_string()) return fail(Code::InvalidArgument, where + " must be a base64url string");
  const auto& text = value.get_ref<const std::string&>();
  // base64 grows 4/3: refuse before decoding what cannot fit.
  if (text.size() > (max + 2) / 3 * 4 + 2)
    return fail(Code::InvalidArgument, where + " is larger than " + std::to_string(max) + " bytes");
  auto bytes = MCIMD_TRY(base64url_decode(text, where));
  if (bytes.size() > max) return fail(Code::InvalidArgument, where + " is larger than " + std::to_string(max) + " bytes");
  if (bytes.empty() && !allow_empty) return fail(Code::InvalidArgument, where + " is empty");
  return bytes;
}

Result<Bytes> b64_field(const json& obj, const char* field, std::size_t max, bool allow_empty = false) {
  auto it = obj.find(field);
  const std::string where = std::string("pcr policy.") + field;
  if (it == obj.end()) return fail(Code::InvalidArgument, "Missing field " + where);
  return b64_value(*it, where, max, allow_empty);
}

Status only_fields(const json& obj, std::initializer_list<const char*> fields, const std::string& where) {
  std::set<std::string> known(fields.begin(), fields.end());
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!known.count(it.key())) return fail(Code::InvalidArgument, "Unknown field " + where + "." + it.key());
  return {};
}

Result<PcrValues> read_pcr_values(const json& obj) {
  auto it = obj.find("pcrs");
  if (it == obj.end()) return fail(Code::InvalidArgument, "Missing field pcr policy.pcrs");
  if (!it->is_object()) return fail(Code::InvalidArgument, "pcr policy.pcrs must be an object");
  MCIMD_CHECK(only_fields(*it, {"bank", "values"}, "pcr policy.pcrs"));
  PcrValues out;
  auto bank = it->find("bank");
  if (bank == it->end() || !bank->is_string()) return fail(Code::InvalidArgument, "pcr policy.pcrs.bank must be a string");
  out.bank = bank->get<std::string>();
  auto size = digest_size(out.bank);
  if (!size) return fail(Code::InvalidArgument, "pcr policy.pcrs.bank '" + out.bank + "' is not sha1, sha256, sha384 or sha512");
  auto values = it->find("values");
  if (values == it->end() || !values->is_object())
    return fail(Code::InvalidArgument, "pcr policy.pcrs.values must be an object");
  for (auto v = values->begin(); v != values->end(); ++v) {
    const std::string& key = v.key();
    unsigned index = 0;
    auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
    if (key.empty() || ec != std::errc() || end != key.data() + key.size() || index >= kPcrCount ||
        (key.size() > 1 && key[0] == '0'))
      return fail(Code::InvalidArgument, "pcr policy.pcrs.values has key '" + key + "', not a PCR index 0-23");
    out.values[index] = MCIMD_TRY(b64_value(*v, "pcr policy.pcrs.values." + key, *size, /*allow_empty=*/false));
  }
  MCIMD_CHECK(check_pcr_values(out));
  return out;
}

}  // namespace

Result<PolicyAuthority> policy_authority_from_pem(std::string_view pem) {
  auto key = MCIMD_TRY(read_pem_key(pem, /*want_private=*/false));
  auto pub = MCIMD_TRY(authority_public(key.get()));
  PolicyAuthority a;
  a.public_area = MCIMD_TRY((marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(pub, "the authority public area")));
  a.name = MCIMD_TRY(object_name(a.public_area));
  return a;
}

Result<PolicyAuthority> load_policy_authority(const std::filesystem::path& pem_file) {
  auto text = read_text_file(pem_file, 64 * 1024);
  if (!text) return fail(text.error().code, "Failed to read the policy authority key: " + text.error().message);
  auto a = policy_authority_from_pem(*text);
  if (!a) return fail(a.error().code, pem_file.string() + ": " + a.error().message);
  return a;
}

Bytes authorize_policy_digest(std::span<const uint8_t> authority_name, std::span<const uint8_t> policy_ref) {
  Bytes first(SHA256_DIGEST_LENGTH, 0);
  put_be32(first, kCcPolicyAuthorize);
  append(first, authority_name);
  Bytes second = sha256(first);
  append(second, policy_ref);
  return sha256(second);
}

Bytes deletion_counter_name(uint32_t nv_index) {
  Bytes pub;
  put_be32(pub, nv_index);
  pub.push_back(0x00);  // nameAlg TPM_ALG_SHA256
  pub.push_back(0x0B);
  put_be32(pub, kDeletionCounterAttributes);
  pub.push_back(0x00);  // authPolicy: empty TPM2B
  pub.push_back(0x00);
  pub.push_back(0x00);  // dataSize 8
  pub.push_back(0x08);
  Bytes name{0x00, 0x0B};
  append(name, sha256(pub));
  return name;
}

Bytes bound_policy_digest(std::span<const uint8_t> authority_name, std::span<const uint8_t> policy_ref,
                          const DeletionBinding& binding) {
  Bytes args;
  for (int shift = 56; shift >= 0; shift -= 8) args.push_back(static_cast<uint8_t>(binding.value >> shift));
  args.insert(args.end(), {0x00, 0x00, 0x00, 0x00});  // offset 0, TPM_EO_EQ (0x0000)
  Bytes input = authorize_policy_digest(authority_name, policy_ref);
  put_be32(input, kCcPolicyNv);
  append(input, sha256(args));
  append(input, deletion_counter_name(binding.nv_index));
  return sha256(input);
}

Status check_pcr_values(const PcrValues& pcrs) {
  auto size = digest_size(pcrs.bank);
  if (!size) return fail(Code::InvalidArgument, "PCR bank '" + pcrs.bank + "' is not sha1, sha256, sha384 or sha512");
  if (pcrs.values.empty()) return fail(Code::InvalidArgument, "The PCR policy names no PCR");
  for (const auto& [index, value] : pcrs.values) {
    if (index >= kPcrCount) return fail(Code::InvalidArgument, "PCR " + std::to_string(index) + " is above 23");
    if (value.size() != *size)
      return fail(Code::InvalidArgument, "The value of " + pcrs.bank + ":" + std::to_string(index) + " is " +
                                             std::to_string(value.size()) + " bytes, not " + std::to_string(*size));
  }
  return {};
}

Bytes pcr_values_digest(const PcrValues& pcrs) {
  Bytes concat;
  for (const auto& [index, value] : pcrs.values) append(concat, value);  // std::map: ascending index
  return sha256(concat);
}

Bytes pcr_selection_bytes(const PcrValues& pcrs) {
  Bytes out;
  put_be32(out, 1);  // TPML_PCR_SELECTION.count
  const uint16_t alg = hash_alg(pcrs.bank).value_or(TPM2_ALG_NULL);
  out.push_back(static_cast<uint8_t>(alg >> 8));
  out.push_back(static_cast<uint8_t>(alg));
  out.push_back(3);  // sizeofSelect: PCRs 0–23
  uint8_t select[3] = {};
  for (const auto& [index, value] : pcrs.values)
    if (index < kPcrCount) select[index / 8] |= static_cast<uint8_t>(1u << (index % 8));
  out.insert(out.end(), select, select + 3);
  return out;
}

Result<Bytes> pcr_policy_digest(const PcrValues& pcrs) {
  MCIMD_CHECK(check_pcr_values(pcrs));
  Bytes input(SHA256_DIGEST_LENGTH, 0);
  put_be32(input, kCcPolicyPcr);
  append(input, pcr_selection_bytes(pcrs));
  append(input, pcr_values_digest(pcrs));
  return sha256(input);
}

Bytes approval_digest(std::span<const uint8_t> approved_policy, std::span<const uint8_t> policy_ref) {
  Bytes input(approved_policy.begin(), approved_policy.end());
  append(input, policy_ref);
  return sha256(input);
}

std::string to_json(const SignedPcrPolicy& p) {
  json values = json::object();
  for (const auto& [index, value] : p.pcrs.values) values[std::to_string(index)] = base64url_encode(value);
  json doc = {{"format", kFormat},
              {"authority", base64url_encode(p.authority)},
              {"policy_ref", base64url_encode(p.policy_ref)},
              {"pcrs", {{"bank", p.pcrs.bank}, {"values", values}}},
              {"approved_policy", base64url_encode(p.approved_policy)},
              {"signature", base64url_encode(p.signature)}};
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<SignedPcrPolicy> signed_pcr_policy_from_json(std::string_view text) {
  if (text.size() > kMaxDocument)
    return fail(Code::InvalidArgument, "The PCR policy document is larger than " + std::to_string(kMaxDocument) + " bytes");
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return fail(Code::InvalidArgument, "The PCR policy document must be a JSON object");
    MCIMD_CHECK(only_fields(doc, {"format", "authority", "policy_ref", "pcrs", "approved_policy", "signature"},
                            "pcr policy"));
    auto format = doc.find("format");
    if (format == doc.end() || !format->is_string() || format->get<std::string>() != kFormat)
      return fail(Code::InvalidArgument, "pcr policy.format must be '" + std::string(kFormat) + "'");
    SignedPcrPolicy p;
    p.authority = MCIMD_TRY(b64_field(doc, "authority", 66));
    p.policy_ref = MCIMD_TRY(b64_field(doc, "policy_ref", 64, /*allow_empty=*/true));
    p.pcrs = MCIMD_TRY(read_pcr_values(doc));
    p.approved_policy = MCIMD_TRY(b64_field(doc, "approved_policy", 64));
    p.signature = MCIMD_TRY(b64_field(doc, "signature", 1024));
    MCIMD_CHECK((unmarshal<TPMT_SIGNATURE, Tss2_MU_TPMT_SIGNATURE_Unmarshal>(p.signature, "pcr policy.signature")));
    return p;
  } catch (const json::exception& e) {
    return fail(Code::InvalidArgument, std::string("The PCR policy document is not valid JSON: ") + e.what());
  }
}

std::string policy_id(const SignedPcrPolicy& policy) { return to_hex(policy.approved_policy).substr(0, 16); }

Status verify_pcr_policy(const SignedPcrPolicy& p, const PolicyAuthority& authority) {
  const std::string_view expected_ref = kPcrPolicyRef;
  if (std::string_view(reinterpret_cast<const char*>(p.policy_ref.data()), p.policy_ref.size()) != expected_ref)
    return fail(Code::InvalidArgument, "The PCR policy's policy_ref is not '" + std::string(kPcrPolicyRef) + "'");
  auto digest = MCIMD_TRY(pcr_policy_digest(p.pcrs));
  if (digest != p.approved_policy)
    return fail(Code::InvalidArgument, "The PCR policy's approved_policy is not the PolicyPCR digest of its values");
  if (p.authority != authority.name)
    return fail(Code::NotAuthorized, "The PCR policy was issued by authority " + to_hex(p.authority) +
                                         ", not by the configured one (" + to_hex(authority.name) + ")");
  auto pub = MCIMD_TRY((unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(authority.public_area, "authority public")));
  const auto& ecc = pub.publicArea.unique.ecc;
  // Rebuild the OpenSSL key from the TPM public area: uncompressed point 04 ‖ x ‖ y.
  Bytes point{0x04};
  point.insert(point.end(), ecc.x.buffer, ecc.x.buffer + ecc.x.size);
  point.insert(point.end(), ecc.y.buffer, ecc.y.buffer + ecc.y.size);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("prime256v1"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()), OSSL_PARAM_construct_end()};
  EvpPkeyCtx from(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!from || EVP_PKEY_fromdata_init(from.get()) <= 0 ||
      EVP_PKEY_fromdata(from.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    return fail(Code::InvalidArgument, "The authority key is not a valid P-256 point: " + openssl_reason());
  EvpPkey key(raw);
  auto der = MCIMD_TRY(der_from_tpmt(p.signature));
  const Bytes ahash = approval_digest(p.approved_policy, p.policy_ref);
  EvpPkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) <= 0) return fail(Code::Internal, "EVP_PKEY_verify_init: " + openssl_reason());
  if (EVP_PKEY_verify(ctx.get(), der.data(), der.size(), ahash.data(), ahash.size()) != 1) {
    ERR_clear_error();
    return fail(Code::NotAuthorized, "The PCR policy's signature does not verify with the configured authority key");
  }
  return {};
}

Result<SignedPcrPolicy> sign_pcr_policy(std::string_view private_key_pem, const PcrValues& pcrs) {
  auto key = MCIMD_TRY(read_pem_key(private_key_pem, /*want_private=*/true));
  SignedPcrPolicy p;
  auto authority = MCIMD_TRY(authority_public(key.get()));
  auto public_area = MCIMD_TRY((marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(authority, "the authority public area")));
  p.authority = MCIMD_TRY(object_name(public_area));
  p.policy_ref.assign(kPcrPolicyRef.begin(), kPcrPolicyRef.end());
  p.pcrs = pcrs;
  p.approved_policy = MCIMD_TRY(pcr_policy_digest(pcrs));
  const Bytes ahash = approval_digest(p.approved_policy, p.policy_ref);
  EvpPkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 || EVP_PKEY_sign(ctx.get(), nullptr, &len, ahash.data(), ahash.size()) <= 0)
    return fail(Code::Internal, "EVP_PKEY_sign: " + openssl_reason());
  Bytes der(len);
  if (EVP_PKEY_sign(ctx.get(), der.data(), &len, ahash.data(), ahash.size()) <= 0)
    return fail(Code::Internal, "EVP_PKEY_sign: " + openssl_reason());
  der.resize(len);
  p.signature = MCIMD_TRY(tpmt_from_der(der));
  return p;
}

}  // namespace mcimd::protocol
