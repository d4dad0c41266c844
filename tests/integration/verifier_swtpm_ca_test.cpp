// The verifier's EK chain check against a real manufacturer CA: swtpm_setup provisions the
// EK certificate, signed by swtpm's local CA, which plays the TPM vendor here.
#include <gtest/gtest.h>

#include "attestation/verifier_ek.hpp"
#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;

TEST(AnEkCertificateFromSwtpmsLocalCa, ChainsToThatCaAndMatchesTheEk) {
  test::Swtpm swtpm(test::SwtpmOptions{/*provision_ek_certificates=*/true});
  Bytes der, ek_public, other_public;
  {
    auto ctx = tpm::Context::open(tpm::ContextOptions{swtpm.tcti(), {}}).value();
    der = ctx->ek_certificate(tpm::EkType::Rsa2048).value();
    ek_public = ctx->ek_public(tpm::EkType::Rsa2048).value();
    other_public = ctx->ek_public(tpm::EkType::EccP256).value();
  }
  auto cas = attestation::CaBundle::load(
      {test::Swtpm::local_ca_root_certificate(), test::Swtpm::local_ca_issuer_certificate()});
  ASSERT_TRUE(cas) << cas.error().message;
  auto ok = attestation::verify_ek_certificate(der, *cas, ek_public);
  EXPECT_TRUE(ok) << ok.error().message;
  // The same certificate offered for another key is refused.
  auto other = attestation::verify_ek_certificate(der, *cas, other_public);
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("another key"), std::string::npos) << other.error().describe();
}

TEST(AnEkCertificateFromSwtpmsLocalCa, IsRefusedByAVerifierTrustingAnotherCa) {
  test::Swtpm swtpm(test::SwtpmOptions{/*provision_ek_certificates=*/true});
  Bytes der;
  {
    auto ctx = tpm::Context::open(tpm::ContextOptions{swtpm.tcti(), {}}).value();
    der = ctx->ek_certificate(tpm::EkType::Rsa2048).value();
  }
  test::TempDir dir;
  auto other = dir.path() / "other-ca.pem";
  auto made = test::run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-subj", "/CN=Another TPM vendor", "-days", "1", "-keyout", (dir.path() / "other.key").string(),
                         "-out", other.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto cas = attestation::CaBundle::load({other});
  ASSERT_TRUE(cas) << cas.error().message;
  auto refused = attestation::verify_ek_certificate(der, *cas);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::NotAuthorized) << refused.error().describe();
  EXPECT_NE(refused.error().message.find("EK certificate chain"), std::string::npos) << refused.error().describe();
}
