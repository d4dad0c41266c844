// make_credential against what TPM2_ActivateCredential does with it (Part 1 §24), redone here in
// software with the EK's private key: the structure, the seed protection and the outer HMAC.
#include <gtest/gtest.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "attestation/credential.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

struct Reader {
  std::span<const uint8_t> d;
  Bytes tpm2b() {
    if (d.size() < 2) throw std::runtime_error("short");
    std::size_t n = (d[0] << 8) | d[1];
    if (d.size() < 2 + n) throw std::runtime_error("short");
    Bytes out(d.begin() + 2, d.begin() + 2 + static_cast<long>(n));
    d = d.subspan(2 + n);
    return out;
  }
};

// TPM2_ActivateCredential in software; returns nullopt where the TPM would fail (integrity).
std::optional<Bytes> activate(EVP_PKEY* ek_private, const Bytes& ek_public, const Bytes& name,
                              const protocol::CredentialChallenge& c) {
  auto ek = parse_tpm_public(ek_public);
  EXPECT_TRUE(ek);
  Reader secret_reader{c.encrypted_secret};
  Bytes secret = secret_reader.tpm2b();
  EXPECT_TRUE(secret_reader.d.empty());
  SecureBytes seed;
  if (EVP_PKEY_get_base_id(ek_private) == EVP_PKEY_RSA) {
    auto* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, ek_private, nullptr);
    EVP_PKEY_decrypt_init(ctx);
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING);
    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256());
    auto* label = static_cast<unsigned char*>(OPENSSL_memdup("IDENTITY", 9));
    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, 9);
    std::size_t len = 256;
    seed.resize(len);
    EXPECT_EQ(EVP_PKEY_decrypt(ctx, seed.data(), &len, secret.data(), secret.size()), 1);
    seed.resize(len);
    EVP_PKEY_CTX_free(ctx);
  } else {
    Reader point{secret};
    Bytes x = point.tpm2b(), y = point.tpm2b();
    EXPECT_TRUE(point.d.empty());
    EXPECT_EQ(x.size(), 32u);
    // Build Qe from its coordinates via a TPM2B_PUBLIC-shaped parse: simplest is OpenSSL params.
    Bytes pt{0x04};
    pt.insert(pt.end(), x.begin(), x.end());
    pt.insert(pt.end(), y.begin(), y.end());
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("group", const_cast<char*>("prime256v1"), 0),
                           OSSL_PARAM_construct_octet_string("pub", pt.data(), pt.size()), OSSL_PARAM_construct_end()};
    auto* fctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* qe = nullptr;
    EVP_PKEY_fromdata_init(fctx);
    EXPECT_EQ(EVP_PKEY_fromdata(fctx, &qe, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(fctx);
    auto* dctx = EVP_PKEY_CTX_new_from_pkey(nullptr, ek_private, nullptr);
    EVP_PKEY_derive_init(dctx);
    EVP_PKEY_derive_set_peer(dctx, qe);
    std::size_t zlen = 32;
    SecureBytes z(zlen);
    EXPECT_EQ(EVP_PKEY_derive(dctx, z.data(), &zlen), 1);
    EVP_PKEY_CTX_free(dctx);
    EVP_PKEY_free(qe);
    seed = *kdfe(alg::kSha256, z, "IDENTITY", x, ek->ecc_x, 256);
  }
  EXPECT_EQ(seed.size(), 32u);
  Reader blob{c.credential_blob};
  Bytes id_object = blob.tpm2b();
  EXPECT_TRUE(blob.d.empty());
  Reader id{id_object};
  Bytes hmac = id.tpm2b();
  Bytes enc_identity(id.d.begin(), id.d.end());
  auto hmac_key = *kdfa(alg::kSha256, seed, "INTEGRITY", {}, {}, 256);
  Bytes input = enc_identity;
  input.insert(input.end(), name.begin(), name.end());
  unsigned char mac[32];
  unsigned mac_len = 0;
  HMAC(EVP_sha256(), hmac_key.data(), 32, input.data(), input.size(), mac, &mac_len);
  if (hmac != Bytes(mac, mac + mac_len)) return std::nullopt;  // TPM_RC_INTEGRITY
  auto sym = *kdfa(alg::kSha256, seed, "STORAGE", name, {}, 128);
  Bytes plain(enc_identity.size());
  auto* cctx = EVP_CIPHER_CTX_new();
  uint8_t iv[16] = {};
  int l1 = 0, l2 = 0;
  EVP_DecryptInit_ex(cctx, EVP_aes_128_cfb128(), nullptr, sym.data(), iv);
  EVP_DecryptUpdate(cctx, plain.data(), &l1, enc_identity.data(), int(enc_identity.size()));
  EVP_DecryptFinal_ex(cctx, plain.data() + l1, &l2);
  EVP_CIPHER_CTX_free(cctx);
  Reader digest{plain};
  Bytes out = digest.tpm2b();
  EXPECT_TRUE(digest.d.empty());
  return out;
}

class ACredentialChallenge : public ::testing::TestWithParam<const char*> {
 protected:
  EvpPkey ek_ = std::string(GetParam()) == "rsa" ? rsa_key() : ec_key();
  Bytes ek_public_ = tpm_public(ek_.get(), kEkAttributes);
  EvpPkey ak_ = ec_key();
  Bytes ak_public_ = tpm_public(ak_.get(), kAkAttributes);
};

TEST_P(ACredentialChallenge, IsReleasedByTheEkForTheNamedAk) {
  Bytes name = *ak_name(ak_public_);
  Bytes secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  auto c = make_credential(ek_public_, name, secret);
  ASSERT_TRUE(c) << c.error().describe();
  auto released = activate(ek_.get(), ek_public_, name, *c);
  ASSERT_TRUE(released);
  EXPECT_EQ(*released, secret);
}

TEST_P(ACredentialChallenge, FailsIntegrityForAnotherAk) {
  Bytes name = *ak_name(ak_public_);
  auto other = ec_key();
  Bytes other_name = *ak_name(tpm_public(other.get(), kAkAttributes));
  auto c = make_credential(ek_public_, name, Bytes(32, 0x42));
  ASSERT_TRUE(c);
  EXPECT_FALSE(activate(ek_.get(), ek_public_, other_name, *c));
}

TEST_P(ACredentialChallenge, IsFreshEachTime) {
  Bytes name = *ak_name(ak_public_);
  auto a = make_credential(ek_public_, name, Bytes(16, 1));
  auto b = make_credential(ek_public_, name, Bytes(16, 1));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->encrypted_secret, b->encrypted_secret);
  EXPECT_NE(a->credential_blob, b->credential_blob);
}

TEST_P(ACredentialChallenge, RefusesSecretsLongerThanTheNameDigest) {
  Bytes name = *ak_name(ak_public_);
  EXPECT_FALSE(make_credential(ek_public_, name, Bytes(33, 1)));
  EXPECT_FALSE(make_credential(ek_public_, name, Bytes{}));
}

TEST_P(ACredentialChallenge, RefusesAnEkThatIsNotAStorageKey) {
  Bytes name = *ak_name(ak_public_);
  auto r = make_credential(tpm_public(ek_.get(), kAkAttributes), name, Bytes(16, 1));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("restricted decryption"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(RsaAndEcc, ACredentialChallenge, ::testing::Values("rsa", "ecc"));

TEST(AnAkName, IsNameAlgThenTheDigestOfThePublicArea) {
  auto ak = ec_key();
  Bytes pub = tpm_public(ak.get(), kAkAttributes);
  Bytes name = *ak_name(pub);
  ASSERT_EQ(name.size(), 34u);
  EXPECT_EQ(name[0], 0x00);
  EXPECT_EQ(name[1], 0x0b);
  Bytes digest = sha(alg::kSha256, std::span<const uint8_t>(pub).subspan(2));
  EXPECT_EQ(Bytes(name.begin() + 2, name.end()), digest);
}

TEST(AnAkName, RefusesATruncatedPublicArea) {
  auto ak = ec_key();
  Bytes pub = tpm_public(ak.get(), kAkAttributes);
  pub.pop_back();
  EXPECT_FALSE(ak_name(pub));
}

TEST(Kdfa, ProducesTheRequestedLengthAndDependsOnEveryInput) {
  Bytes key(32, 7), u{1}, v{2};
  auto a = *kdfa(alg::kSha256, key, "STORAGE", u, v, 128);
  EXPECT_EQ(a.size(), 16u);
  auto b = *kdfa(alg::kSha256, key, "STORAGE", u, v, 512);
  EXPECT_EQ(b.size(), 64u);
  EXPECT_FALSE(std::equal(a.begin(), a.end(), b.begin()));  // bits are part of the input
  EXPECT_NE(a, *kdfa(alg::kSha256, key, "INTEGRITY", u, v, 128));
  EXPECT_NE(a, *kdfa(alg::kSha256, key, "STORAGE", v, u, 128));
}

TEST(TheTpm2ToolsCredentialFile, StartsWithTheMagicAndVersion) {
  protocol::CredentialChallenge c{{0, 1, 9}, {0, 1, 8}};
  Bytes f = to_tpm2_tools_credential(c);
  EXPECT_EQ(f, (Bytes{0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1, 0, 1, 9, 0, 1, 8}));
}

}  // namespace
