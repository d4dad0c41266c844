// The device's checks of a signed MCIM package, without a TPM: the JWS signer's purpose
// (documentSigning, RFC 9336). Each refusal with its own code.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "attestation/jws.hpp"
#include "protocol/provisioning.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace std::chrono_literals;
using mcimd::test::CertificateOptions;
using mcimd::test::Credential;
using mcimd::test::KeyPurpose;
using mcimd::test::PkiOptions;
using mcimd::test::TestPki;

namespace {

protocol::Timestamp now() { return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()); }

CaBundle bundle_of(const TestPki& pki) {
  auto b = CaBundle::from_pem(pki.root_pem());
  if (!b) throw std::runtime_error(b.error().describe());
  return *b;
}

std::string sign(std::string_view payload, const Credential& signer) {
  auto jws = jws_sign({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, signer.pkey(),
                      signer.chain_der);
  if (!jws) throw std::runtime_error(jws.error().describe());
  return *jws;
}

// The same JWS with another payload and the old signature: what someone who changed a signed
// document without the key can send.
std::string with_payload(const std::string& jws, std::string_view payload) {
  const auto d1 = jws.find('.'), d2 = jws.rfind('.');
  return jws.substr(0, d1 + 1) +
         base64url_encode({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}) + jws.substr(d2);
}

void expect_refused(const Status& r, Code code, const std::string& needle) {
  ASSERT_FALSE(r) << "accepted; expected " << code_name(code);
  EXPECT_EQ(r.error().code, code) << r.error().describe();
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

template <class T>
Status status_of(const Result<T>& r) {
  if (r) return {};
  return tl::unexpected(r.error());
}

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

}  // namespace
