// EK certificate chains against a manufacturer CA bundle, with the TCG EK profile's critical
// extensions, and the certificate's key bound to the EK public area.
#include <gtest/gtest.h>

#include <fstream>

#include "attestation/verifier_ek.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

class AnEkCertificate : public ::testing::TestWithParam<const char*> {
 protected:
  EvpPkey ek_ = std::string(GetParam()) == "rsa" ? rsa_key() : ec_key();
  Bytes ek_public_ = tpm_public(ek_.get(), kEkAttributes);
  TestCa ca_;
};

TEST_P(AnEkCertificate, ChainsToTheManufacturerCaAndCertifiesTheEk) {
  auto bundle = CaBundle::from_pem(ca_.pem());
  ASSERT_TRUE(bundle) << bundle.error().describe();
  Bytes cert = ca_.issue_ek(ek_.get());
  auto s = verify_ek_certificate(cert, *bundle, std::span<const uint8_t>(ek_public_));
  EXPECT_TRUE(s) << s.error().describe();
}

TEST_P(AnEkCertificate, FromAnUntrustedCaIsRefused) {
  TestCa other("someone else");
  auto bundle = CaBundle::from_pem(other.pem());
  auto s = verify_ek_certificate(ca_.issue_ek(ek_.get()), *bundle);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("EK certificate chain"), std::string::npos) << s.error().message;
}

TEST_P(AnEkCertificate, WithAnUnknownCriticalExtensionIsRefused) {
  auto bundle = CaBundle::from_pem(ca_.pem());
  auto s = verify_ek_certificate(ca_.issue_ek(ek_.get(), "1.3.6.1.4.1.99999.1"), *bundle);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("critical"), std::string::npos) << s.error().message;
}

TEST_P(AnEkCertificate, ForAnotherKeyIsRefused) {
  auto bundle = CaBundle::from_pem(ca_.pem());
  auto other = ec_key();
  auto s = verify_ek_certificate(ca_.issue_ek(other.get()), *bundle, std::span<const uint8_t>(ek_public_));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("another key"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(RsaAndEcc, AnEkCertificate, ::testing::Values("rsa", "ecc"));

TEST(ACaBundle, LoadsPemFilesAndNamesABadOne) {
  test::TempDir dir;
  TestCa a, b;
  std::ofstream(dir.path() / "cas.pem") << a.pem() << b.pem();
  std::ofstream(dir.path() / "empty.pem") << "nothing here\n";
  auto bundle = CaBundle::load({dir.path() / "cas.pem"});
  ASSERT_TRUE(bundle) << bundle.error().describe();
  EXPECT_EQ(bundle->size(), 2u);
  auto bad = CaBundle::load({dir.path() / "empty.pem"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Code::ConfigError);
  EXPECT_NE(bad.error().message.find("empty.pem"), std::string::npos);
  EXPECT_FALSE(CaBundle::load({dir.path() / "missing.pem"}));
}

TEST(ACaBundle, RefusesGarbageAsACertificate) {
  TestCa a;
  auto bundle = CaBundle::from_pem(a.pem());
  EXPECT_FALSE(verify_ek_certificate(Bytes{0x30, 0x03, 0x02, 0x01, 0x01}, *bundle));
}

}  // namespace
