// JWS compact ES256 with an x5c chain: round trip, and each way a signed document is refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attestation/jws.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

Bytes der_of(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  i2d_X509(cert, &p);
  return out;
}

class AJws : public ::testing::Test {
 protected:
  TestCa ca_{"policy signing CA"};
  Bytes payload_{'r', 'e', 'q', 'u', 'i', 'r', 'e', '_', 'e', 'v', 'e', 'n', 't', '_', 'l', 'o', 'g'};
  std::vector<Bytes> chain_{der_of(ca_.cert.get())};
};

TEST_F(AJws, SignedWithTheCaKeyVerifiesAgainstTheBundle) {
  auto jws = jws_sign(payload_, ca_.key.get(), chain_);
  ASSERT_TRUE(jws) << jws.error().describe();
  auto parts = std::count(jws->begin(), jws->end(), '.');
  EXPECT_EQ(parts, 2);
  auto header = base64url_decode(jws->substr(0, jws->find('.')), "header");
  auto h = nlohmann::json::parse(header->begin(), header->end());
  EXPECT_EQ(h["alg"], "ES256");
  EXPECT_EQ(h["x5c"].size(), 1u);
  auto sig = base64url_decode(jws->substr(jws->rfind('.') + 1), "sig");
  EXPECT_EQ(sig->size(), 64u);
  auto bundle = CaBundle::from_pem(ca_.pem());
  auto content = jws_verify(*jws, *bundle);
  ASSERT_TRUE(content) << content.error().describe();
  EXPECT_EQ(content->payload, payload_);
  EXPECT_TRUE(jws_verify(*jws, ca_.key.get()));
}

TEST_F(AJws, WithATamperedPayloadIsRefused) {
  auto jws = *jws_sign(payload_, ca_.key.get(), chain_);
  std::size_t d1 = jws.find('.'), d2 = jws.rfind('.');
  std::string tampered = jws.substr(0, d1 + 1) + base64url_encode(Bytes{'x'}) + jws.substr(d2);
  auto r = jws_verify(tampered, ca_.key.get());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("does not verify"), std::string::npos);
}

TEST_F(AJws, FromAnUntrustedSignerIsRefused) {
  TestCa other;
  auto jws = *jws_sign(payload_, other.key.get(), {der_of(other.cert.get())});
  auto bundle = CaBundle::from_pem(ca_.pem());
  auto r = jws_verify(jws, *bundle);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::NotAuthorized);
}

TEST_F(AJws, WithAlgNoneOrAnotherAlgIsRefused) {
  auto jws = *jws_sign(payload_, ca_.key.get(), chain_);
  std::string rest = jws.substr(jws.find('.'));
  // Any changed header also breaks the signature: the refusal must be the header's own.
  const std::pair<const char*, const char*> cases[] = {
      {R"({"alg":"none"})", "JWS alg is not ES256"},
      {R"({"alg":"HS256"})", "JWS alg is not ES256"},
      {R"({"alg":"ES256","crit":["b64"]})", "JWS header has critical extensions"},
      {"[]", "JWS header is not a JSON object"},
  };
  for (const auto& [header, reason] : cases) {
    std::string forged = base64url_encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(header),
                                                                   std::strlen(header))) + rest;
    auto r = jws_verify(forged, ca_.key.get());
    ASSERT_FALSE(r) << header;
    EXPECT_EQ(r.error().code, Code::InvalidArgument) << header;
    EXPECT_EQ(r.error().message, reason) << header;
  }
}

TEST_F(AJws, RefusesMalformedCompactForms) {
  for (const char* s : {"", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30.AA"}) EXPECT_FALSE(jws_verify(s, ca_.key.get())) << s;
}

TEST_F(AJws, NeedsAP256SigningKey) {
  auto rsa = rsa_key();
  EXPECT_FALSE(jws_sign(payload_, rsa.get()));
}

}  // namespace
