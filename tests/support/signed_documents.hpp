#pragma once
// Helpers for tests of signed documents (MCIM packages, releases, lifecycle commands): a test
// PKI's root as a trust bundle, JWS made by a test credential, the same JWS with its payload
// changed after signing, and refusals checked by code and words. Failures to build material throw
// std::runtime_error: a test that cannot make its input has nothing to assert.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

#include "attestation/jws.hpp"
#include "attestation/verifier_ek.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/provisioning.hpp"
#include "tests/support/test_pki.hpp"

namespace mcimd::test {

inline protocol::Timestamp now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

inline attestation::CaBundle bundle_of(const TestPki& pki) {
  auto b = attestation::CaBundle::from_pem(pki.root_pem());
  if (!b) throw std::runtime_error(b.error().describe());
  return *b;
}

inline std::string sign(std::string_view payload, const Credential& signer) {
  auto jws = attestation::jws_sign({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, signer.pkey(),
                                   signer.chain_der);
  if (!jws) throw std::runtime_error(jws.error().describe());
  return *jws;
}

// The same JWS with another payload and the old signature: what someone who changed a signed
// document without the key can send.
inline std::string with_payload(const std::string& jws, std::string_view payload) {
  const auto d1 = jws.find('.'), d2 = jws.rfind('.');
  return jws.substr(0, d1 + 1) +
         base64url_encode({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}) + jws.substr(d2);
}

inline void expect_refused(const Status& r, Code code, const std::string& needle) {
  ASSERT_FALSE(r) << "accepted; expected " << code_name(code);
  EXPECT_EQ(r.error().code, code) << r.error().describe();
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

template <class T>
Status status_of(const Result<T>& r) {
  if (r) return {};
  return tl::unexpected(r.error());
}

}  // namespace mcimd::test
