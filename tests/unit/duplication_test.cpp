// Import blobs for a parent key against what TPM2_Import does with them (Part 1 §23.3.2, Part 3
// §13.3), redone here in software with the parent's private key and OpenSSL's own KDFs (SP 800-108
// KBKDF for KDFa, SP 800-56C single-step for KDFe), independent of the library's; and the SRK's
// certification as the operator checks it.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <tss2/tss2_mu.h>

#include <optional>
#include <string>

#include "attestation/duplication.hpp"
#include "attestation/verifier_tpm.hpp"
#include "protocol/quote_domain.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

const Bytes kKey = {0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc};

Bytes policy(uint8_t fill = 0x17) { return Bytes(32, fill); }

// An OpenSSL KDF by name over `params` (ending in OSSL_PARAM_END), `bytes` long.
SecureBytes derive(const char* kdf_name, const OSSL_PARAM* params, std::size_t bytes) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, kdf_name, nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  SecureBytes out(bytes);
  EXPECT_EQ(EVP_KDF_derive(ctx, out.data(), out.size(), params), 1) << kdf_name;
  EVP_KDF_CTX_free(ctx);
  return out;
}

// KDFa as SP 800-108 counter mode with HMAC-SHA256: label as the KBKDF salt, context as its info.
SecureBytes kbkdf(const SecureBytes& key, std::string label, Bytes context, std::size_t bytes) {
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, const_cast<char*>("counter"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, const_cast<char*>("HMAC"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label.data(), label.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, context.data(), context.size()),
      OSSL_PARAM_construct_end()};
  return derive("KBKDF", params, bytes);
}

// KDFe as SP 800-56C single-step with SHA-256: Z as the key, OtherInfo as its info.
SecureBytes sskdf(const SecureBytes& z, Bytes info, std::size_t bytes) {
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(z.data()), z.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  return derive("SSKDF", params, bytes);
}

template <class T, auto Unmarshal>
std::optional<T> unmarshal_exactly(std::span<const uint8_t> data) {
  T value{};
  std::size_t offset = 0;
  if (Unmarshal(data.data(), data.size(), &offset, &value) != TSS2_RC_SUCCESS || offset != data.size())
    return std::nullopt;
  return value;
}

// TPM2_Import in software. Returns the object's sensitive area, or the step at which the TPM would
// have refused the blob.
struct SoftwareImport {
  std::optional<TPMT_SENSITIVE> sensitive;
  std::string refused;  // empty when imported
};

SoftwareImport software_import(EVP_PKEY* parent_private, const Bytes& parent_public,
                               const protocol::ImportBlob& blob) {
  SoftwareImport out;
  auto parent = unmarshal_exactly<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(parent_public);
  auto seed_2b = unmarshal_exactly<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal>(blob.seed);
  auto duplicate = unmarshal_exactly<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Unmarshal>(blob.duplicate);
  auto object = unmarshal_exactly<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(blob.public_area);
  if (!parent || !seed_2b || !duplicate || !object) {
    out.refused = "a structure does not unmarshal exactly";
    return out;
  }
  // The seed (Part 1 Annex B.10.4 / C.6.2, the receiving side).
  SecureBytes seed;
  if (EVP_PKEY_get_base_id(parent_private) == EVP_PKEY_RSA) {
    if (oaep_decrypt_seed(parent_private, "DUPLICATE", {seed_2b->secret, seed_2b->size}, seed) != 1) {
      out.refused = "the seed does not decrypt";
      return out;
    }
  } else {
    auto qe = unmarshal_exactly<TPMS_ECC_POINT, Tss2_MU_TPMS_ECC_POINT_Unmarshal>({seed_2b->secret, seed_2b->size});
    if (!qe) {
      out.refused = "the seed is not a TPMS_ECC_POINT";
      return out;
    }
    const Bytes qe_x(qe->x.buffer, qe->x.buffer + qe->x.size);
    Ecdh shared = ecdh_with_point(parent_private, qe_x, Bytes(qe->y.buffer, qe->y.buffer + qe->y.size));
    if (shared.point_rc != 1 || shared.derive_rc != 1) {
      out.refused = "the seed's point is not on the parent's curve";
      return out;
    }
    // KDFe's OtherInfo: label with its NUL ‖ Qe.x ‖ the parent's x.
    Bytes info = {'D', 'U', 'P', 'L', 'I', 'C', 'A', 'T', 'E', 0};
    info.insert(info.end(), qe_x.begin(), qe_x.end());
    const auto& px = parent->publicArea.unique.ecc.x;
    info.insert(info.end(), px.buffer, px.buffer + px.size);
    seed = sskdf(shared.z, info, 32);
  }
  // The object's name over its public area as sent.
  Bytes name = {0x00, 0x0b};
  Bytes digest = sha(alg::kSha256, std::span<const uint8_t>(blob.public_area).subspan(2));
  name.insert(name.end(), digest.begin(), digest.end());
  // Outer integrity: HMAC(KDFa(seed, "INTEGRITY"), encSensitive ‖ name).
  auto outer = unmarshal_exactly<TPM2B_DIGEST, Tss2_MU_TPM2B_DIGEST_Unmarshal>(
      {duplicate->buffer, std::size_t(2 + ((duplicate->buffer[0] << 8) | duplicate->buffer[1]))});
  if (!outer) {
    out.refused = "the duplicate does not start with a TPM2B_DIGEST";
    return out;
  }
  const std::size_t enc_offset = 2 + outer->size;
  Bytes enc(duplicate->buffer + enc_offset, duplicate->buffer + duplicate->size);
  const SecureBytes hmac_key_bytes = kbkdf(seed, "INTEGRITY", {}, 32);
  Bytes mac_input = enc;
  mac_input.insert(mac_input.end(), name.begin(), name.end());
  unsigned char mac[32];
  unsigned mac_len = 0;
  HMAC(EVP_sha256(), hmac_key_bytes.data(), 32, mac_input.data(), mac_input.size(), mac, &mac_len);
  if (Bytes(outer->buffer, outer->buffer + outer->size) != Bytes(mac, mac + mac_len)) {
    out.refused = "integrity";
    return out;
  }
  // encSensitive decrypted with KDFa(seed, "STORAGE", name) in CFB mode, IV zero.
  const SecureBytes sym_key = kbkdf(seed, "STORAGE", name, 16);
  SecureBytes plain(enc.size());
  EVP_CIPHER_CTX* cctx = EVP_CIPHER_CTX_new();
  const uint8_t iv[16] = {};
  int l1 = 0, l2 = 0;
  EVP_DecryptInit_ex(cctx, EVP_aes_128_cfb128(), nullptr, sym_key.data(), iv);
  EVP_DecryptUpdate(cctx, plain.data(), &l1, enc.data(), int(enc.size()));
  EVP_DecryptFinal_ex(cctx, plain.data() + l1, &l2);
  EVP_CIPHER_CTX_free(cctx);
  auto sensitive = unmarshal_exactly<TPM2B_SENSITIVE, Tss2_MU_TPM2B_SENSITIVE_Unmarshal>(plain);
  if (!sensitive) {
    out.refused = "the sensitive area does not unmarshal exactly";
    return out;
  }
  out.sensitive = sensitive->sensitiveArea;
  return out;
}

TPMT_PUBLIC public_of(const protocol::ImportBlob& blob) {
  auto pub = unmarshal_exactly<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(blob.public_area);
  EXPECT_TRUE(pub);
  return pub ? pub->publicArea : TPMT_PUBLIC{};
}

Bytes bytes_of(const TPM2B_DIGEST& d) { return Bytes(d.buffer, d.buffer + d.size); }

// A refusal of bad input: InvalidArgument with a message that says `says`.
template <class T>
void expect_invalid(const Result<T>& r, const std::string& says) {
  ASSERT_FALSE(r) << says;
  EXPECT_EQ(r.error().code, Code::InvalidArgument) << r.error().describe();
  EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
}

class AnImportBlob : public ::testing::TestWithParam<const char*> {
 protected:
  EvpPkey make_key() const { return std::string(GetParam()) == "rsa" ? rsa_key() : ec_key(); }
  EvpPkey parent_ = make_key();
  Bytes parent_public_ = tpm_public(parent_.get(), kSrkAttributes);
};

TEST_P(AnImportBlob, CarriesAnAes128EcbEncryptOnlyKeyForTheParent) {
  auto blob = make_aes_key_import(parent_public_, kKey, policy());
  ASSERT_TRUE(blob) << blob.error().describe();
  const TPMT_PUBLIC p = public_of(*blob);
  EXPECT_EQ(p.type, TPM2_ALG_SYMCIPHER);
  EXPECT_EQ(p.nameAlg, TPM2_ALG_SHA256);
  // sign (= encrypt) | adminWithPolicy | noDA, as Context::create_aes_key's objects have them,
  // less fixedTPM and fixedParent, which TPM2_Import refuses.
  EXPECT_EQ(p.objectAttributes, TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_NODA);
  EXPECT_EQ(p.parameters.symDetail.sym.algorithm, TPM2_ALG_AES);
  EXPECT_EQ(p.parameters.symDetail.sym.keyBits.aes, 128);
  EXPECT_EQ(p.parameters.symDetail.sym.mode.aes, TPM2_ALG_ECB);
  EXPECT_EQ(bytes_of(p.authPolicy), policy());

  auto imported = software_import(parent_.get(), parent_public_, *blob);
  ASSERT_TRUE(imported.sensitive) << imported.refused;
  const TPMT_SENSITIVE& s = *imported.sensitive;
  EXPECT_EQ(s.sensitiveType, TPM2_ALG_SYMCIPHER);
  EXPECT_EQ(s.authValue.size, 0);
  ASSERT_EQ(s.seedValue.size, 32);
  EXPECT_EQ(Bytes(s.sensitive.sym.buffer, s.sensitive.sym.buffer + s.sensitive.sym.size), kKey);
  // unique = SHA-256(seedValue ‖ key): what TPM2_Import checks as the binding.
  Bytes bound = bytes_of(s.seedValue);
  bound.insert(bound.end(), kKey.begin(), kKey.end());
  EXPECT_EQ(bytes_of(p.unique.sym), sha(alg::kSha256, bound));
  // The seed's size is the parent's: an RSA-2048 ciphertext or a P-256 point.
  auto seed = unmarshal_exactly<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal>(blob->seed);
  ASSERT_TRUE(seed);
  EXPECT_EQ(seed->size, std::string(GetParam()) == "rsa" ? 256u : 2u + 32u + 2u + 32u);
}

TEST_P(AnImportBlob, CarriesSealedDataForTheParent) {
  const Bytes opc = {0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf};
  auto blob = make_sealed_import(parent_public_, opc, policy(0x42));
  ASSERT_TRUE(blob) << blob.error().describe();
  const TPMT_PUBLIC p = public_of(*blob);
  EXPECT_EQ(p.type, TPM2_ALG_KEYEDHASH);
  EXPECT_EQ(p.parameters.keyedHashDetail.scheme.scheme, TPM2_ALG_NULL);
  EXPECT_EQ(p.objectAttributes, TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_NODA);
  EXPECT_EQ(bytes_of(p.authPolicy), policy(0x42));
  auto imported = software_import(parent_.get(), parent_public_, *blob);
  ASSERT_TRUE(imported.sensitive) << imported.refused;
  const TPMT_SENSITIVE& s = *imported.sensitive;
  EXPECT_EQ(s.sensitiveType, TPM2_ALG_KEYEDHASH);
  EXPECT_EQ(Bytes(s.sensitive.bits.buffer, s.sensitive.bits.buffer + s.sensitive.bits.size), opc);
  Bytes bound = bytes_of(s.seedValue);
  bound.insert(bound.end(), opc.begin(), opc.end());
  EXPECT_EQ(bytes_of(p.unique.keyedHash), sha(alg::kSha256, bound));
}

TEST_P(AnImportBlob, DoesNotImportUnderAnotherParent) {
  auto blob = make_aes_key_import(parent_public_, kKey, policy());
  ASSERT_TRUE(blob);
  EvpPkey other = make_key();
  auto imported = software_import(other.get(), tpm_public(other.get(), kSrkAttributes), *blob);
  EXPECT_FALSE(imported.sensitive);
  EXPECT_EQ(imported.refused, std::string(GetParam()) == "rsa" ? "the seed does not decrypt" : "integrity");
}

TEST_P(AnImportBlob, FailsIntegrityWhenItsPublicAreaChanges) {
  auto blob = make_aes_key_import(parent_public_, kKey, policy());
  ASSERT_TRUE(blob);
  ASSERT_TRUE(software_import(parent_.get(), parent_public_, *blob).sensitive);
  blob->public_area.back() ^= 0x01;  // the last byte of unique
  EXPECT_EQ(software_import(parent_.get(), parent_public_, *blob).refused, "integrity");
}

TEST_P(AnImportBlob, IsFreshEachTime) {
  auto a = make_aes_key_import(parent_public_, kKey, policy());
  auto b = make_aes_key_import(parent_public_, kKey, policy());
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->public_area, b->public_area);  // a fresh seedValue, so a fresh unique
  EXPECT_NE(a->seed, b->seed);
  EXPECT_NE(a->duplicate, b->duplicate);
}

TEST_P(AnImportBlob, NamesTheParentItWasMadeFor) {
  auto name = srk_name_of(parent_public_);
  ASSERT_TRUE(name) << name.error().describe();
  EXPECT_EQ(*name, parse_tpm_public(parent_public_)->name);
}

INSTANTIATE_TEST_SUITE_P(RsaAndEcc, AnImportBlob, ::testing::Values("rsa", "ecc"));

TEST(AnImportBlob, IsRefusedForAParentThatIsNotAStorageKey) {
  auto key = ec_key();
  const Bytes signing = tpm_public(key.get(), kAkAttributes);
  const Bytes unrestricted = tpm_public(key.get(), kSrkAttributes & ~TPMA_OBJECT_RESTRICTED);
  for (const Bytes& parent : {signing, unrestricted}) {
    expect_invalid(make_aes_key_import(parent, kKey, policy()),
                   "the parent key is not a restricted decryption (storage) key");
    expect_invalid(srk_name_of(parent), "the parent key is not a restricted decryption (storage) key");
  }
  expect_invalid(make_sealed_import(signing, Bytes(16, 1), policy()), "decrypt not set, sign set");
  expect_invalid(make_sealed_import(unrestricted, Bytes(16, 1), policy()), "restricted not set");
}

TEST(AnImportBlob, IsRefusedForAParentWithoutAesCfbForItsChildren) {
  auto key = ec_key();
  Bytes pub = tpm_public(key.get(), kSrkAttributes);
  auto parsed = unmarshal_exactly<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(pub);
  ASSERT_TRUE(parsed);
  parsed->publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CTR;
  Bytes changed(sizeof(TPM2B_PUBLIC));
  std::size_t off = 0;
  ASSERT_EQ(Tss2_MU_TPM2B_PUBLIC_Marshal(&*parsed, changed.data(), changed.size(), &off), TSS2_RC_SUCCESS);
  changed.resize(off);
  expect_invalid(make_aes_key_import(changed, kKey, policy()), "its symmetric algorithm for children is not AES-CFB");
}

TEST(AnImportBlob, IsRefusedForAMalformedParent) {
  auto key = ec_key();
  Bytes pub = tpm_public(key.get(), kSrkAttributes);
  pub.pop_back();
  expect_invalid(make_aes_key_import(pub, kKey, policy()), "the parent key: TPM2B_PUBLIC");
}

TEST(AnImportBlob, IsRefusedForSecretsAndPoliciesOfTheWrongSize) {
  auto key = ec_key();
  const Bytes parent = tpm_public(key.get(), kSrkAttributes);
  for (std::size_t size : {0u, 15u, 17u, 32u})
    expect_invalid(make_aes_key_import(parent, Bytes(size, 1), policy()),
                   "An AES-128 key is 16 bytes, not " + std::to_string(size));
  for (std::size_t size : {0u, 129u})
    expect_invalid(make_sealed_import(parent, Bytes(size, 1), policy()),
                   "1 to 128 bytes, not " + std::to_string(size));
  EXPECT_TRUE(make_sealed_import(parent, Bytes(128, 1), policy()));
  expect_invalid(make_aes_key_import(parent, kKey, Bytes(20, 1)), "SHA-256 digest (32 bytes), not 20");
}

// --- the SRK's certification --------------------------------------------------------------------------
class AnSrkCertification : public ::testing::Test {
 protected:
  protocol::Certification certify(const CertifySpec& spec) {
    protocol::Certification c;
    c.message = certify_message(spec);
    c.signature = tpm_sign(ak_.get(), c.message);
    return c;
  }
  CertifySpec genuine() const { return CertifySpec{nonce_, *srk_name_of(srk_public_)}; }
  Result<ClockInfo> verify(const protocol::Certification& c) {
    return verify_srk_certification(ak_public_, c, srk_public_, nonce_);
  }
  void expect_refused(const Result<ClockInfo>& r, Code code, const std::string& check) {
    ASSERT_FALSE(r) << check;
    EXPECT_EQ(r.error().code, code) << r.error().describe();
    EXPECT_NE(r.error().message.find("SRK certification refused: " + check + ":"), std::string::npos)
        << r.error().message;
  }

  EvpPkey ak_ = ec_key();
  Bytes ak_public_ = tpm_public(ak_.get(), kAkAttributes);
  EvpPkey srk_ = ec_key();
  Bytes srk_public_ = tpm_public(srk_.get(), kSrkAttributes);
  Bytes nonce_ = protocol::qualifying_data(protocol::QuoteDomain::SrkCertification, Bytes(64, 0x33));
};

TEST_F(AnSrkCertification, PassesAndGivesTheClock) {
  auto r = verify(certify(genuine()));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->clock, 5000u);
  EXPECT_EQ(r->reset_count, 3u);
}

TEST_F(AnSrkCertification, PassesForAnRsaSrk) {
  srk_ = rsa_key();
  srk_public_ = tpm_public(srk_.get(), kSrkAttributes);
  auto r = verify(certify(genuine()));
  ASSERT_TRUE(r) << r.error().describe();
}

TEST_F(AnSrkCertification, IsRefusedWithATamperedSignature) {
  auto c = certify(genuine());
  c.signature[c.signature.size() - 5] ^= 0x01;
  expect_refused(verify(c), Code::SignatureInvalid, "signature");
}

TEST_F(AnSrkCertification, IsRefusedWithAMessageTheAkDidNotSign) {
  auto c = certify(genuine());
  auto other = certify(CertifySpec{nonce_, *srk_name_of(srk_public_), TPM2_GENERATED_VALUE, TPM2_ST_ATTEST_CERTIFY, 9});
  c.message = other.message;
  expect_refused(verify(c), Code::SignatureInvalid, "signature");
}

TEST_F(AnSrkCertification, IsRefusedForOtherQualifyingData) {
  auto spec = genuine();
  spec.extra_data = protocol::qualifying_data(protocol::QuoteDomain::SrkCertification, Bytes(64, 0x34));
  expect_refused(verify(certify(spec)), Code::Replayed, "qualifying_data");
  spec.extra_data = protocol::qualifying_data(protocol::QuoteDomain::OperatorEvidence, Bytes(64, 0x33));
  expect_refused(verify(certify(spec)), Code::Replayed, "qualifying_data");
}

TEST_F(AnSrkCertification, IsRefusedWhenItCertifiesAnotherKey) {
  auto other = ec_key();
  auto spec = genuine();
  spec.certified_name = *srk_name_of(tpm_public(other.get(), kSrkAttributes));
  expect_refused(verify(certify(spec)), Code::WrongDevice, "name");
}

TEST_F(AnSrkCertification, IsRefusedWhenItIsNotACertification) {
  auto spec = genuine();
  spec.type = TPM2_ST_ATTEST_QUOTE;
  expect_refused(verify(certify(spec)), Code::InvalidArgument, "type");
  spec = genuine();
  spec.magic = 0x12345678;
  expect_refused(verify(certify(spec)), Code::InvalidArgument, "magic");
}

TEST_F(AnSrkCertification, IsRefusedForAMalformedMessage) {
  auto c = certify(genuine());
  c.message.push_back(0);
  expect_refused(verify(c), Code::InvalidArgument, "format");
}

TEST_F(AnSrkCertification, IsRefusedForAnAkThatIsNotAnAttestationKey) {
  const Bytes unrestricted = tpm_public(ak_.get(), kAkAttributes & ~TPMA_OBJECT_RESTRICTED);
  auto r = verify_srk_certification(unrestricted, certify(genuine()), srk_public_, nonce_);
  expect_refused(r, Code::InvalidArgument, "ak");
}

TEST_F(AnSrkCertification, IsRefusedForAnSrkWhosePrivateKeyMayExistOutsideTheTpm) {
  // An imported or duplicable key (fixedTPM clear) certified by the AK: packages for it could be
  // opened wherever its private key is.
  const Bytes movable = tpm_public(srk_.get(), kSrkAttributes & ~(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT));
  auto spec = genuine();
  spec.certified_name = parse_tpm_public(movable)->name;
  auto r = verify_srk_certification(ak_public_, certify(spec), movable, nonce_);
  expect_refused(r, Code::InvalidArgument, "srk");
  EXPECT_NE(r.error().message.find("fixedTPM not set, fixedParent not set"), std::string::npos) << r.error().message;
}

TEST_F(AnSrkCertification, IsRefusedForAnSrkThatIsASigningKey) {
  const Bytes signing = tpm_public(srk_.get(), kAkAttributes);
  auto spec = genuine();
  spec.certified_name = parse_tpm_public(signing)->name;
  expect_refused(verify_srk_certification(ak_public_, certify(spec), signing, nonce_), Code::InvalidArgument, "srk");
}

}  // namespace
