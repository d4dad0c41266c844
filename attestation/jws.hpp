#pragma once
// JWS compact serialization (RFC 7515) with ES256 only (RFC 7518 §3.4: ECDSA P-256 SHA-256, the
// signature as R ‖ S, 32 bytes each), and the signer's certificate chain in "x5c". Used for
// signed reference policies and other operator documents.
#include <openssl/evp.h>

#include <chrono>
#include <optional>
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
// A signer that does not chain and a signature that does not verify are both NotAuthorized here;
// the JwsTrust form below tells them apart.
[[nodiscard]] Result<JwsContent> jws_verify(std::string_view compact, const CaBundle& trust);

// Extended key usage id-kp-documentSigning (RFC 9336 §3): a key for signing documents, neither a
// TLS server's nor a client's. Operators sign MCIM packages with it.
inline constexpr std::string_view kDocumentSigningEku = "1.3.6.1.5.5.7.3.36";

// Whom a signed document must come from: a chain to `anchors`, valid at `at` (now when absent),
// and, with required_eku_oid, a signer certificate issued for that purpose.
struct JwsTrust {
  const CaBundle& anchors;
  std::optional<std::string> required_eku_oid;  // dotted OID, e.g. kDocumentSigningEku
  std::optional<std::chrono::sys_seconds> at;
};

// Verifies a compact JWS and its signer. Checks, in order, each failure its own code:
//   - the compact form and protected header as above, x5c present (InvalidArgument);
//   - the signature verifies over "header.payload" with the x5c leaf's key (SignatureInvalid:
//     the document changed after it was signed);
//   - the leaf chains to a certificate of `anchors` at `at` (UntrustedSigner, with OpenSSL's reason);
//   - with required_eku_oid: the leaf's extendedKeyUsage lists it, its keyUsage (when present)
//     allows digitalSignature, and no CA of the chain has an extendedKeyUsage that lists neither
//     it nor anyExtendedKeyUsage (UntrustedSigner naming the missing purpose).
// A signature that verifies is checked before the chain so that a changed document is told from
// one that was never trusted.
[[nodiscard]] Result<JwsContent> jws_verify(std::string_view compact, const JwsTrust& trust);

// The same checks with a known public key instead of a chain ("x5c" optional, not evaluated).
[[nodiscard]] Result<JwsContent> jws_verify(std::string_view compact, EVP_PKEY* key);
// The same checks with the key of the x5c leaf, whoever issued it: whether the document is intact
// as its signer made it, not whether that signer is trusted. For documents this process issued
// itself (the operator reading back its own signed policy).
[[nodiscard]] Result<JwsContent> jws_verify_as_signed(std::string_view compact);

}  // namespace mcimd::attestation
