#pragma once
// Documents an operator signs for devices — MCIM packages, releases, lifecycle commands — as JWS
// (ES256, x5c): which configured operator a signer speaks for, and whether a document is within
// its validity window. Shared by package_check and lifecycle_check so every operator-signed
// document is refused for the same reasons, with the same codes, in the same order.
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "attestation/verifier_ek.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::attestation {

// An operator mcimd accepts signed documents from: its operator_id as the documents name it, and
// the anchors its document signers chain to. Operators' anchors must be disjoint: a signer that
// chains to two operators could speak for either, and its documents are refused.
struct OperatorTrust {
  std::string operator_id;
  CaBundle anchors;
};

// What a kind of document is called in messages, and how large its JWS text may be.
struct OperatorDocumentKind {
  std::string_view noun;         // "package": "The package's signer …"
  std::string_view signed_what;  // "MCIM packages": "No operator is trusted to sign MCIM packages"
  std::size_t max_size;          // of the JWS compact text
};

struct OperatorSignedDocument {
  const OperatorTrust* signer = nullptr;  // the operator the signer chains to: an element of `operators`
  std::string payload;                    // not yet parsed
  Bytes sha256;                           // of the JWS compact text
};

// Verifies who signed a document. Checks, in order, each failure its own code:
//   1. the text is at most kind.max_size bytes (InvalidArgument); at least one operator is
//      configured, each once (ConfigError); the text is a JWS with an x5c chain (InvalidArgument);
//   2. the signature verifies over the JWS header and payload with the x5c leaf's key
//      (SignatureInvalid: the document changed after it was signed);
//   3. the leaf chains, at `now`, to the anchors of exactly one operator (UntrustedSigner: to
//      none, or to several);
//   4. the leaf is a document signer: extendedKeyUsage id-kp-documentSigning (RFC 9336),
//      keyUsage digitalSignature when present, no CA restricted to other purposes (UntrustedSigner).
// The payload is returned unread: the caller parses it once its signer is known.
[[nodiscard]] Result<OperatorSignedDocument> verify_operator_jws(std::string_view jws_compact,
                                                                 std::span<const OperatorTrust> operators,
                                                                 protocol::Timestamp now,
                                                                 const OperatorDocumentKind& kind);

// That a document naming `named_operator` comes from that operator's signer (UntrustedSigner: an
// operator cannot sign for another).
[[nodiscard]] Status check_speaks_for(std::string_view noun, std::string_view named_operator,
                                      const OperatorTrust& signer);

// How far a signed document's validity window may stretch.
struct ValidityLimits {
  std::chrono::seconds clock_skew;  // how far `issued` may be ahead of the device's clock
  std::chrono::days max_lifetime;   // from `issued` to `expires`
};

// A document's validity window at `now`. Checks, in order:
//   1. `now` is before `expires` (Expired);
//   2. `issued` is not after now + clock_skew (InvalidArgument);
//   3. `expires` is after `issued`, by at most max_lifetime (InvalidArgument).
[[nodiscard]] Status check_validity_window(std::string_view noun, protocol::Timestamp issued,
                                           protocol::Timestamp expires, protocol::Timestamp now,
                                           const ValidityLimits& limits);

// SHA-256 of a document's text, as receipts and records name it.
[[nodiscard]] Bytes sha256_of(std::string_view text);

}  // namespace mcimd::attestation
