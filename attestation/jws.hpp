#pragma once
// JWS compact serialization (RFC 7515) with ES256 only (RFC 7518 §3.4: ECDSA P-256 SHA-256, the
// signature as R ‖ S, 32 bytes each), and the signer's certificate chain in "x5c". Used for
// signed reference policies and other operator documents.
#include <openssl/evp.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/verifier_ek.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// Whether key is an EC key on NIST P-256 (prime256v1), the only curve ES256 signs with.
[[nodiscard]] bool is_p256(EVP_PKEY* key);

// Signs payload with an EC P-256 private key. The protected header is
// {"alg":"ES256","x5c":[base64 DER…]} (x5c omitted when the chain is empty; leaf first).
[[nodiscard]] Result<std::string> jws_sign(std::span<const uint8_t> payload, EVP_PKEY* key,
                                           const std::vector<Bytes>& x5c_der = {});

struct JwsContent {
  Bytes payload;
  std::vector<Bytes> x5c;  // DER, leaf first
};

// Verifies a compact JWS against trust anchors. Checks: three base64url parts; the header is a
// JSON object with "alg" exactly "ES256", no "crit", and a non-empty "x5c" of DER certificates;
// the leaf chains to a certificate of `trust` (the rest of x5c as untrusted intermediates);
// the leaf key is EC P-256; the signature is 64 bytes and verifies over "header.payload".
[[nodiscard]] Result<JwsContent> jws_verify(std::string_view compact, const CaBundle& trust);
// The same checks with a known public key instead of a chain ("x5c" optional, not evaluated).
[[nodiscard]] Result<JwsContent> jws_verify(std::string_view compact, EVP_PKEY* key);
// The same checks with the key of the x5c leaf, whoever issued it: whether the document is intact
// as its signer made it, not whether that signer is trusted. For documents this process issued
// itself (the operator reading back its own signed policy).
[[nodiscard]] Result<JwsContent> jws_verify_as_signed(std::string_view compact);

}  // namespace mcimd::attestation
