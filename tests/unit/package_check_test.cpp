// The device's checks of a signed MCIM package, without a TPM: the JWS signer's purpose
// (documentSigning, RFC 9336), which operator a signer speaks for, validity in time, and whether
// the package was made for this device, request and TPM. Each refusal with its own code.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <chrono>
#include <string>

#include "attestation/jws.hpp"
#include "attestation/package_check.hpp"
#include "tests/fuzz/provisioning_fixtures.hpp"
#include "tests/support/signed_documents.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace std::chrono_literals;
using mcimd::test::CertificateOptions;
using mcimd::test::Credential;
using mcimd::test::KeyPurpose;
using mcimd::test::PkiOptions;
using mcimd::test::TestPki;
using mcimd::test::bundle_of;
using mcimd::test::expect_refused;
using mcimd::test::now;
using mcimd::test::sign;
using mcimd::test::status_of;
using mcimd::test::with_payload;
namespace fixtures = mcimd::test::provisioning;

namespace {

const std::string kPayload = R"({"format":"mcimd-package-1"})";

// --- JWS signer purpose --------------------------------------------------------------------------------------
class AJwsSigner : public ::testing::Test {
 protected:
  Result<JwsContent> verify(const Credential& signer, const CaBundle& anchors) {
    return jws_verify(sign(kPayload, signer), JwsTrust{anchors, std::string(kDocumentSigningEku), std::nullopt});
  }

  TestPki pki_{"operator A", /*intermediate=*/true};
  CaBundle anchors_ = bundle_of(pki_);
};

TEST_F(AJwsSigner, ForDocumentSigningIsAccepted) {
  auto r = verify(pki_.document_signer(), anchors_);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(std::string(r->payload.begin(), r->payload.end()), kPayload);
}

TEST_F(AJwsSigner, WithoutAKeyUsageExtensionIsAcceptedOnItsExtendedKeyUsage) {
  CertificateOptions o;
  o.key_usage.reset();
  EXPECT_TRUE(verify(pki_.issue(o), anchors_));
}

TEST_F(AJwsSigner, ForTlsOnlyIsRefusedNamingThePurpose) {
  for (const auto& signer : {pki_.tls_server(), pki_.tls_client()}) {
    expect_refused(status_of(verify(signer, anchors_)), Code::UntrustedSigner,
                   "not for key purpose 1.3.6.1.5.5.7.3.36");
    // Without a required purpose the same chain is accepted: the purpose is what refuses it.
    EXPECT_TRUE(jws_verify(sign(kPayload, signer), JwsTrust{anchors_, std::nullopt, std::nullopt}));
  }
}

TEST_F(AJwsSigner, WithoutAnyExtendedKeyUsageIsRefused) {
  CertificateOptions o;
  o.purposes.clear();
  expect_refused(status_of(verify(pki_.issue(o), anchors_)), Code::UntrustedSigner,
                 "its extendedKeyUsage does not list it");
}

TEST_F(AJwsSigner, WhoseKeyUsageExcludesSignaturesIsRefused) {
  CertificateOptions o;
  o.key_usage = "critical,keyAgreement";
  expect_refused(status_of(verify(pki_.issue(o), anchors_)), Code::UntrustedSigner,
                 "its keyUsage does not allow digitalSignature");
}

TEST_F(AJwsSigner, BelowACaRestrictedToOtherPurposesIsRefused) {
  PkiOptions restricted;
  restricted.name = "TLS only";
  restricted.intermediate = true;
  restricted.intermediate_purposes = {KeyPurpose::ServerAuth, KeyPurpose::ClientAuth};
  TestPki tls_ca{restricted};
  expect_refused(status_of(verify(tls_ca.document_signer(), bundle_of(tls_ca))), Code::UntrustedSigner,
                 "issuer at depth 1 is not for key purpose");
  restricted.name = "signing";
  restricted.intermediate_purposes = {KeyPurpose::DocumentSigning};
  TestPki signing_ca{restricted};
  EXPECT_TRUE(verify(signing_ca.document_signer(), bundle_of(signing_ca)));
}

TEST_F(AJwsSigner, ChainingToAnotherAnchorIsRefused) {
  TestPki other{"operator B"};
  expect_refused(status_of(verify(other.document_signer(), anchors_)), Code::UntrustedSigner,
                 "JWS signer certificate: ");
}

TEST_F(AJwsSigner, WhoseCertificateExpiredAtTheGivenTimeIsRefused) {
  auto jws = sign(kPayload, pki_.document_signer());
  EXPECT_TRUE(jws_verify(jws, JwsTrust{anchors_, std::string(kDocumentSigningEku), now() + 24h}));
  expect_refused(status_of(jws_verify(jws, JwsTrust{anchors_, std::string(kDocumentSigningEku), now() + 24h * 400})),
                 Code::UntrustedSigner, "certificate has expired");
}

TEST_F(AJwsSigner, OfAChangedDocumentIsSignatureInvalidWhateverItsChain) {
  auto changed = with_payload(sign(kPayload, pki_.document_signer()), R"({"format":"other"})");
  expect_refused(status_of(jws_verify(changed, JwsTrust{anchors_, std::string(kDocumentSigningEku), std::nullopt})),
                 Code::SignatureInvalid, "does not verify");
  TestPki other{"operator B"};
  expect_refused(status_of(jws_verify(changed, JwsTrust{bundle_of(other), std::nullopt, std::nullopt})),
                 Code::SignatureInvalid, "does not verify");
  // The older form keeps its single refusal code.
  expect_refused(status_of(jws_verify(changed, anchors_)), Code::NotAuthorized, "does not verify");
}

// --- verify_package ---------------------------------------------------------------------------------------------
class AnMcimPackage : public ::testing::Test {
 protected:
  AnMcimPackage() {
    header_.operator_id = "Operator A";
    header_.issued = now_ - 1min;
    header_.expires = now_ + 24h * 7;
    operators_.push_back({"Operator A", bundle_of(pki_a_)});
    operators_.push_back({"Operator B", bundle_of(pki_b_)});
  }

  std::string package(const protocol::PackageHeader& h) const { return sign(protocol::to_json(h), signer_a_); }
  Result<VerifiedPackage> verify(std::string_view jws) const { return verify_package(jws, operators_, now_); }
  Status verify_header(const protocol::PackageHeader& h) const { return status_of(verify(package(h))); }

  protocol::Timestamp now_ = now();
  fixtures::Device device_;
  protocol::PackageHeader header_ = fixtures::package_header(device_);
  TestPki pki_a_{"operator A", /*intermediate=*/true};
  TestPki pki_b_{"operator B"};
  Credential signer_a_ = pki_a_.document_signer();
  std::vector<OperatorTrust> operators_;
};

TEST_F(AnMcimPackage, FromItsOperatorsSignerIsVerified) {
  const auto jws = package(header_);
  auto r = verify(jws);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->header, header_);
  EXPECT_EQ(r->operator_id, "Operator A");
  Bytes digest(32);
  unsigned len = 0;
  EVP_Digest(jws.data(), jws.size(), digest.data(), &len, EVP_sha256(), nullptr);
  EXPECT_EQ(r->package_sha256, digest);
}

TEST_F(AnMcimPackage, LargerThanTheLimitIsRefusedUnread) {
  expect_refused(status_of(verify(std::string(protocol::kMaxPackageSize + 1, 'a'))), Code::InvalidArgument,
                 "larger than");
  expect_refused(status_of(verify("a.b")), Code::InvalidArgument, "JWS");
}

TEST_F(AnMcimPackage, NeedsEachOperatorConfiguredOnce) {
  expect_refused(status_of(verify_package(package(header_), {}, now_)), Code::ConfigError, "No operator");
  operators_.push_back({"Operator A", bundle_of(pki_b_)});
  expect_refused(status_of(verify(package(header_))), Code::ConfigError, "configured twice");
}

TEST_F(AnMcimPackage, ChangedAfterSigningIsSignatureInvalid) {
  auto changed = header_;
  changed.counter += 1000;
  expect_refused(status_of(verify(with_payload(package(header_), protocol::to_json(changed)))), Code::SignatureInvalid,
                 "does not verify");
}

TEST_F(AnMcimPackage, FromASignerOfNoTrustedOperatorIsRefused) {
  TestPki stranger{"stranger"};
  expect_refused(status_of(verify(sign(protocol::to_json(header_), stranger.document_signer()))),
                 Code::UntrustedSigner, "does not chain to the anchors of any trusted operator");
}

TEST_F(AnMcimPackage, SignedForOneOperatorCannotSpeakForAnother) {
  auto jws = sign(protocol::to_json(header_), pki_b_.document_signer());  // names Operator A
  expect_refused(status_of(verify(jws)), Code::UntrustedSigner,
                 "names operator 'Operator A' but its signer is trusted for operator 'Operator B' only");
}

TEST_F(AnMcimPackage, WhoseSignerChainsToSeveralOperatorsIsRefused) {
  operators_.push_back({"Operator C", bundle_of(pki_a_)});
  expect_refused(status_of(verify(package(header_))), Code::UntrustedSigner,
                 "several operators ('Operator A', 'Operator C')");
}

TEST_F(AnMcimPackage, FromATlsCertificateOfItsOperatorIsRefused) {
  expect_refused(status_of(verify(sign(protocol::to_json(header_), pki_a_.tls_server()))), Code::UntrustedSigner,
                 "not for key purpose 1.3.6.1.5.5.7.3.36");
}

TEST_F(AnMcimPackage, WhosePayloadIsNotAPackageHeaderIsRefused) {
  expect_refused(status_of(verify(sign(R"({"format":"mcimd-package-1"})", signer_a_))), Code::InvalidArgument,
                 "Missing field package.");
  expect_refused(status_of(verify(sign("not json", signer_a_))), Code::InvalidArgument, "not valid JSON");
}

TEST_F(AnMcimPackage, PastItsExpiryIsExpired) {
  header_.issued = now_ - 24h * 8;
  header_.expires = now_ - 1s;
  expect_refused(verify_header(header_), Code::Expired, "expired");
  header_.expires = now_;
  expect_refused(verify_header(header_), Code::Expired, "expired");
  header_.expires = now_ + 1s;
  EXPECT_TRUE(verify_header(header_));
}

TEST_F(AnMcimPackage, IssuedInTheFutureBeyondTheClockSkewIsRefused) {
  header_.issued = now_ + kPackageClockSkew;
  EXPECT_TRUE(verify_header(header_));
  header_.issued = now_ + kPackageClockSkew + 1s;
  expect_refused(verify_header(header_), Code::InvalidArgument, "in the future");
}

TEST_F(AnMcimPackage, WithAValidityWindowBackwardsOrLongerThanThirtyDaysIsRefused) {
  header_.issued = now_ + 4min;
  header_.expires = now_ + 2min;
  expect_refused(verify_header(header_), Code::InvalidArgument, "expires before it is issued");
  header_.issued = now_ - 1h;
  header_.expires = header_.issued + kMaxPackageLifetime;
  EXPECT_TRUE(verify_header(header_));
  header_.expires += 1s;
  expect_refused(verify_header(header_), Code::InvalidArgument, "valid for more than 30 days");
}

// --- check_package_for_device --------------------------------------------------------------------------------------
class APackageForThisDevice : public ::testing::Test {
 protected:
  APackageForThisDevice() {
    header_.counter = 8;
    expect_.device = device_.id;
    expect_.outstanding_nonces = nonces_;
    expect_.last_counter = 7;
    expect_.srk_name = device_.srk_name;
    expect_.authority_name = device_.authority_name;
    expect_.algorithms = {"milenage"};
  }

  fixtures::Device device_;
  protocol::PackageHeader header_ = fixtures::package_header(device_);
  std::vector<Bytes> nonces_{Bytes(32, 0x01), header_.device_nonce};
  DeviceExpectations expect_;
};

TEST_F(APackageForThisDevice, MadeForThisRequestAndTpmIsAccepted) {
  auto r = check_package_for_device(header_, expect_);
  EXPECT_TRUE(r) << r.error().describe();
}

TEST_F(APackageForThisDevice, ForAnotherDeviceIsWrongDevice) {
  fixtures::Device other;
  header_.device = other.id;
  expect_refused(check_package_for_device(header_, expect_), Code::WrongDevice, other.id);
}

TEST_F(APackageForThisDevice, AnsweringNoOutstandingRequestIsReplayed) {
  header_.device_nonce = Bytes(32, 0x02);
  expect_refused(check_package_for_device(header_, expect_), Code::Replayed, "no outstanding package request");
  header_ = fixtures::package_header(device_);
  header_.counter = 8;
  expect_.outstanding_nonces = {};
  expect_refused(check_package_for_device(header_, expect_), Code::Replayed, "no outstanding package request");
}

TEST_F(APackageForThisDevice, WhoseCounterIsNotAboveTheLastIsReplayed) {
  for (uint64_t counter : {uint64_t{7}, uint64_t{0}}) {
    header_.counter = counter;
    expect_refused(check_package_for_device(header_, expect_), Code::Replayed, "is not above the last accepted, 7");
  }
}

TEST_F(APackageForThisDevice, MadeForAnotherTpmsSrkIsTpmMismatch) {
  fixtures::Device other;
  header_.srk_name = other.srk_name;
  expect_refused(check_package_for_device(header_, expect_), Code::TpmMismatch, to_hex(other.srk_name));
}

TEST_F(APackageForThisDevice, BindingItsObjectsToAnotherAuthorityIsRefused) {
  fixtures::Device other;
  header_.authority = other.authority_public;
  auto r = check_package_for_device(header_, expect_);
  expect_refused(r, Code::InvalidArgument, "policy authority " + to_hex(other.authority_name));
  expect_refused(r, Code::InvalidArgument, "not this device's " + to_hex(device_.authority_name));
}

TEST_F(APackageForThisDevice, WithAnAlgorithmNotImplementedIsUnsupported) {
  header_.algorithm = "tuak";
  expect_refused(check_package_for_device(header_, expect_), Code::Unsupported, "'tuak' is not implemented");
  header_.algorithm = "milenage";
  header_.algorithm_parameters = R"({"c1":"00000000000000000000000000000001"})";
  expect_refused(check_package_for_device(header_, expect_), Code::Unsupported, "'milenage' has parameters");
}

TEST_F(APackageForThisDevice, IsCheckedInTheDocumentedOrder) {
  fixtures::Device other;
  header_.algorithm = "tuak";
  header_.authority = other.authority_public;
  expect_refused(check_package_for_device(header_, expect_), Code::InvalidArgument, "policy authority");
  header_.srk_name = other.srk_name;
  expect_refused(check_package_for_device(header_, expect_), Code::TpmMismatch, "SRK");
  header_.counter = 1;
  expect_refused(check_package_for_device(header_, expect_), Code::Replayed, "counter");
  header_.device_nonce = Bytes(32, 0x03);
  expect_refused(check_package_for_device(header_, expect_), Code::Replayed, "outstanding");
  header_.device = other.id;
  expect_refused(check_package_for_device(header_, expect_), Code::WrongDevice, "device");
}

}  // namespace
