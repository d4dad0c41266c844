// make_credential against what TPM2_ActivateCredential does with it (Part 1 §24), redone here in
// software with the EK's private key: the structure, the seed protection and the outer HMAC.
#include <gtest/gtest.h>

#include "attestation/credential.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

// TPM2_ActivateCredential in software; returns nullopt where the TPM would fail (integrity).
// Checks on the way that every part of the challenge is well-formed.
std::optional<Bytes> activate(EVP_PKEY* ek_private, const Bytes& ek_public, const Bytes& name,
                              const protocol::CredentialChallenge& c) {
  auto activation = activate_credential(ek_private, ek_public, name, c);
  EXPECT_TRUE(activation.ek_error.empty()) << activation.ek_error;
  EXPECT_EQ(activation.seed_rc, 1);
  EXPECT_EQ(activation.qe_rc, 1);
  if (activation.qe_x_size) {
    EXPECT_EQ(*activation.qe_x_size, 32u);
  }
  EXPECT_EQ(activation.seed_size, 32u);
  EXPECT_EQ(activation.trailing_bytes, 0u);
  return activation.released;
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
  for (const Bytes& secret : {Bytes(33, 1), Bytes{}}) {
    auto r = make_credential(ek_public_, name, secret);
    ASSERT_FALSE(r) << secret.size();
    EXPECT_NE(r.error().message.find("credential secret must be 1..32 bytes"), std::string::npos)
        << r.error().message;
  }
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
