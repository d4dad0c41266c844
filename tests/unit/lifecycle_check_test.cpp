// The device's checks of signed lifecycle documents, without a TPM: releases from the current
// operator or the subscriber, and remote commands from the profile's operator — who signed them,
// which operator that signer speaks for, and validity in time. Each refusal with its own code.
#include <gtest/gtest.h>

#include <openssl/x509.h>

#include <chrono>
#include <string>
#include <vector>

#include "attestation/jws.hpp"
#include "attestation/lifecycle_check.hpp"
#include "tests/fuzz/lifecycle_fixtures.hpp"
#include "tests/support/signed_documents.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace std::chrono_literals;
using mcimd::test::bundle_of;
using mcimd::test::Credential;
using mcimd::test::expect_refused;
using mcimd::test::sign;
using mcimd::test::status_of;
using mcimd::test::TestPki;
using mcimd::test::with_payload;
namespace fixtures = mcimd::test::lifecycle;

namespace {

// Operators A (with an intermediate CA) and B, each trusted for its own documents.
class OperatorSignedLifecycle : public ::testing::Test {
 protected:
  OperatorSignedLifecycle() {
    operators_.push_back({"Operator A", bundle_of(pki_a_)});
    operators_.push_back({"Operator B", bundle_of(pki_b_)});
    release_.issued = command_.issued = now_ - 1min;
    release_.expires = command_.expires = now_ + 24h;
  }

  std::string signed_release(const Credential& signer) const { return sign(protocol::to_json(release_), signer); }
  std::string signed_command(const Credential& signer) const { return sign(protocol::to_json(command_), signer); }
  Status verify_release_of(const Credential& signer) const {
    return status_of(verify_release(signed_release(signer), operators_, now_));
  }
  Status verify_command_of(const Credential& signer) const {
    return status_of(verify_command(signed_command(signer), operators_, now_));
  }

  protocol::Timestamp now_ = mcimd::test::now();
  fixtures::Device device_;
  protocol::ReleaseAuthorisation release_ = fixtures::release(device_);  // from Operator A to Operator B
  protocol::OperatorCommand command_ = fixtures::command(device_);       // Operator A's
  TestPki pki_a_{"operator A", /*intermediate=*/true};
  TestPki pki_b_{"operator B"};
  Credential signer_a_ = pki_a_.document_signer();
  std::vector<OperatorTrust> operators_;
};

using AnOperatorsRelease = OperatorSignedLifecycle;
using AnOperatorsCommand = OperatorSignedLifecycle;

Bytes sha256(std::string_view text) {
  Bytes digest(32);
  unsigned len = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &len, EVP_sha256(), nullptr);
  return digest;
}

}  // namespace

// --- verify_release ------------------------------------------------------------------------------------------
TEST_F(AnOperatorsRelease, FromTheProfilesOperatorIsVerified) {
  const auto jws = signed_release(signer_a_);
  auto r = verify_release(jws, operators_, now_);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->body, release_);
  EXPECT_EQ(r->signer_operator, "Operator A");
  EXPECT_EQ(r->sha256, sha256(jws));
}

TEST_F(AnOperatorsRelease, ChangedAfterSigningIsSignatureInvalid) {
  auto changed = release_;
  changed.to_operator = "Operator C";
  expect_refused(status_of(verify_release(with_payload(signed_release(signer_a_), protocol::to_json(changed)),
                                          operators_, now_)),
                 Code::SignatureInvalid, "does not verify");
}

TEST_F(AnOperatorsRelease, FromASignerOfNoTrustedOperatorIsUntrusted) {
  TestPki stranger{"stranger"};
  expect_refused(verify_release_of(stranger.document_signer()), Code::UntrustedSigner,
                 "The release's signer does not chain to the anchors of any trusted operator");
}

TEST_F(AnOperatorsRelease, FromItsOperatorsTlsCertificateIsUntrusted) {
  expect_refused(verify_release_of(pki_a_.tls_server()), Code::UntrustedSigner, "not for key purpose 1.3.6.1.5.5.7.3.36");
}

TEST_F(AnOperatorsRelease, OfAnotherOperatorsProfileIsUntrusted) {
  // Operator B's signer releasing a profile of Operator A's.
  expect_refused(verify_release_of(pki_b_.document_signer()), Code::UntrustedSigner,
                 "The release names operator 'Operator A' but its signer is trusted for operator 'Operator B' only");
}

TEST_F(AnOperatorsRelease, ClaimingTheSubscriberSignedItIsUntrusted) {
  release_.signer = protocol::ReleaseSigner::Subscriber;
  expect_refused(verify_release_of(signer_a_), Code::UntrustedSigner,
                 "says it is signed by the subscriber but the operator's key signed it");
}

TEST_F(AnOperatorsRelease, PastItsExpiryIsExpired) {
  release_.issued = now_ - 48h;
  release_.expires = now_;
  expect_refused(verify_release_of(signer_a_), Code::Expired, "The release expired at");
  release_.expires = now_ + 1s;
  EXPECT_TRUE(verify_release_of(signer_a_));
}

TEST_F(AnOperatorsRelease, IssuedInTheFutureBeyondTheClockSkewIsRefused) {
  release_.issued = now_ + kLifecycleClockSkew;
  EXPECT_TRUE(verify_release_of(signer_a_));
  release_.issued = now_ + kLifecycleClockSkew + 1s;
  expect_refused(verify_release_of(signer_a_), Code::InvalidArgument, "in the future");
}

TEST_F(AnOperatorsRelease, ValidForLongerThanThirtyDaysIsRefused) {
  release_.issued = now_ - 1h;
  release_.expires = release_.issued + kMaxLifecycleLifetime;
  EXPECT_TRUE(verify_release_of(signer_a_));
  release_.expires += 1s;
  expect_refused(verify_release_of(signer_a_), Code::InvalidArgument, "valid for more than 30 days");
}

TEST_F(AnOperatorsRelease, WhosePayloadIsNotAReleaseIsRefused) {
  expect_refused(status_of(verify_release(sign(protocol::to_json(command_), signer_a_), operators_, now_)),
                 Code::InvalidArgument, "release.format is 'mcimd-command-1'");
  expect_refused(status_of(verify_release(std::string(protocol::kMaxLifecycleJwsSize + 1, 'a'), operators_, now_)),
                 Code::InvalidArgument, "The release is larger than");
  expect_refused(status_of(verify_release(signed_release(signer_a_), {}, now_)), Code::ConfigError,
                 "No operator is trusted to sign releases");
}

// --- verify_subscriber_release -----------------------------------------------------------------------------------
class ASubscribersRelease : public ::testing::Test {
 protected:
  ASubscribersRelease() {
    release_.signer = protocol::ReleaseSigner::Subscriber;
    release_.issued = now_ - 1min;
    release_.expires = now_ + 24h;
  }

  static Bytes spki_of(EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(key, &der);
    if (len <= 0) throw std::runtime_error("i2d_PUBKEY");
    Bytes out(der, der + len);
    OPENSSL_free(der);
    return out;
  }

  std::string signed_by(EVP_PKEY* key) const {
    const std::string payload = protocol::to_json(release_);
    auto jws = jws_sign({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, key);
    if (!jws) throw std::runtime_error(jws.error().describe());
    return *jws;
  }

  Status verify(const std::string& jws) const { return status_of(verify_subscriber_release(jws, spki_, now_)); }

  protocol::Timestamp now_ = mcimd::test::now();
  fixtures::Device device_;
  protocol::ReleaseAuthorisation release_ = fixtures::release(device_);
  EvpPkey subscriber_ = mcimd::test::verifier::ec_key();
  Bytes spki_ = spki_of(subscriber_.get());
};

TEST_F(ASubscribersRelease, SignedWithTheSubscribersKeyIsVerified) {
  const auto jws = signed_by(subscriber_.get());
  auto r = verify_subscriber_release(jws, spki_, now_);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->body, release_);
  EXPECT_EQ(r->signer_operator, "");
  EXPECT_EQ(r->sha256, sha256(jws));
}

TEST_F(ASubscribersRelease, SignedWithAnotherKeyIsSignatureInvalid) {
  auto other = mcimd::test::verifier::ec_key();
  expect_refused(verify(signed_by(other.get())), Code::SignatureInvalid, "not signed by the subscriber's key");
}

TEST_F(ASubscribersRelease, ChangedAfterSigningIsSignatureInvalid) {
  auto changed = release_;
  changed.to_operator = "Operator C";
  expect_refused(verify(with_payload(signed_by(subscriber_.get()), protocol::to_json(changed))),
                 Code::SignatureInvalid, "not signed by the subscriber's key");
}

TEST_F(ASubscribersRelease, ClaimingTheOperatorSignedItIsUntrusted) {
  release_.signer = protocol::ReleaseSigner::Operator;
  expect_refused(verify(signed_by(subscriber_.get())), Code::UntrustedSigner,
                 "says it is signed by the operator but the subscriber's key signed it");
}

TEST_F(ASubscribersRelease, IsCheckedInTimeLikeAnOperatorsRelease) {
  release_.issued = now_ - 48h;
  release_.expires = now_ - 1s;
  expect_refused(verify(signed_by(subscriber_.get())), Code::Expired, "expired");
  release_.issued = now_ + kLifecycleClockSkew + 1s;
  release_.expires = now_ + 24h;
  expect_refused(verify(signed_by(subscriber_.get())), Code::InvalidArgument, "in the future");
}

TEST_F(ASubscribersRelease, NeedsAP256SubjectPublicKeyInfo) {
  const auto jws = signed_by(subscriber_.get());
  expect_refused(status_of(verify_subscriber_release(jws, Bytes{0x30, 0x00}, now_)), Code::InvalidArgument,
                 "not a DER SubjectPublicKeyInfo");
  auto rsa = mcimd::test::verifier::rsa_key();
  expect_refused(status_of(verify_subscriber_release(jws, spki_of(rsa.get()), now_)), Code::InvalidArgument,
                 "not an EC P-256 key");
  Bytes trailing = spki_;
  trailing.push_back(0);
  expect_refused(status_of(verify_subscriber_release(jws, trailing, now_)), Code::InvalidArgument,
                 "not a DER SubjectPublicKeyInfo");
}

// --- verify_command ------------------------------------------------------------------------------------------------
TEST_F(AnOperatorsCommand, FromTheProfilesOperatorIsVerified) {
  for (auto kind : {protocol::CommandKind::Enable, protocol::CommandKind::Disable, protocol::CommandKind::Delete,
                    protocol::CommandKind::Fallback, protocol::CommandKind::Restore}) {
    command_.command = kind;
    const auto jws = signed_command(signer_a_);
    auto r = verify_command(jws, operators_, now_);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->body, command_);
    EXPECT_EQ(r->signer_operator, "Operator A");
    EXPECT_EQ(r->sha256, sha256(jws));
  }
}

TEST_F(AnOperatorsCommand, ChangedAfterSigningIsSignatureInvalid) {
  auto changed = command_;
  changed.command = protocol::CommandKind::Delete;
  expect_refused(status_of(verify_command(with_payload(signed_command(signer_a_), protocol::to_json(changed)),
                                          operators_, now_)),
                 Code::SignatureInvalid, "does not verify");
}

TEST_F(AnOperatorsCommand, FromASignerOfNoTrustedOperatorIsUntrusted) {
  TestPki stranger{"stranger"};
  expect_refused(verify_command_of(stranger.document_signer()), Code::UntrustedSigner,
                 "The command's signer does not chain to the anchors of any trusted operator");
}

TEST_F(AnOperatorsCommand, FromItsOperatorsTlsCertificateIsUntrusted) {
  expect_refused(verify_command_of(pki_a_.tls_server()), Code::UntrustedSigner, "not for key purpose 1.3.6.1.5.5.7.3.36");
}

TEST_F(AnOperatorsCommand, ForAnotherOperatorsProfileIsUntrusted) {
  expect_refused(verify_command_of(pki_b_.document_signer()), Code::UntrustedSigner,
                 "The command names operator 'Operator A' but its signer is trusted for operator 'Operator B' only");
}

TEST_F(AnOperatorsCommand, PastItsExpiryIsExpiredAndFromTheFutureIsRefused) {
  command_.issued = now_ - 48h;
  command_.expires = now_ - 1s;
  expect_refused(verify_command_of(signer_a_), Code::Expired, "The command expired at");
  command_.issued = now_ + kLifecycleClockSkew + 1s;
  command_.expires = now_ + 24h;
  expect_refused(verify_command_of(signer_a_), Code::InvalidArgument, "The command is issued at");
  command_.issued = now_ + 2min;
  command_.expires = now_ + 1min;
  expect_refused(verify_command_of(signer_a_), Code::InvalidArgument, "expires before it is issued");
}

TEST_F(AnOperatorsCommand, WhosePayloadIsAReleaseIsRefused) {
  expect_refused(status_of(verify_command(signed_release(signer_a_), operators_, now_)), Code::InvalidArgument,
                 "command.format is 'mcimd-release-1'");
}
