#pragma once
// Device-side checks of lifecycle documents (protocol/lifecycle.hpp) before mcimd acts on them:
// who signed a release or a command, and whether it is still valid. No TPM code and no store here:
// whether the document names this device, an installed profile of that operator, a counter above
// the last accepted, and whether the profile's rules allow it, is the daemon's check, made after
// these with what it holds.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "attestation/operator_jws.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/lifecycle.hpp"

namespace mcimd::attestation {

struct VerifiedRelease {
  protocol::ReleaseAuthorisation body;
  std::string signer_operator;  // the operator whose anchors the signer chains to; empty for a subscriber's
  Bytes sha256;                 // SHA-256 of the JWS compact text
};

struct VerifiedCommand {
  protocol::OperatorCommand body;
  std::string signer_operator;  // the operator whose anchors the signer chains to (= body.operator_id)
  Bytes sha256;                 // SHA-256 of the JWS compact text
};

// The same allowances as a package's (package_check.hpp): a few minutes of clock difference
// between operator and gateway, and no signed document that stays usable for more than a month.
inline constexpr auto kLifecycleClockSkew = std::chrono::minutes{5};
inline constexpr auto kMaxLifecycleLifetime = std::chrono::days{30};

// Verifies a release signed by the current operator (JWS compact, ES256, x5c). Checks, in order,
// each failure its own code:
//   1. the text is at most protocol::kMaxLifecycleJwsSize bytes (InvalidArgument); at least one
//      operator is configured, each once (ConfigError); a JWS with an x5c chain (InvalidArgument);
//   2. the signature verifies with the x5c leaf's key (SignatureInvalid);
//   3. the leaf chains, at `now`, to the anchors of exactly one operator (UntrustedSigner);
//   4. the leaf is a document signer, id-kp-documentSigning (UntrustedSigner);
//   5. the payload is a release (protocol::release_authorisation_from_json: InvalidArgument);
//   6. from_operator is the operator whose anchors the signer chains to (UntrustedSigner: an
//      operator cannot release another operator's profile);
//   7. signer is "operator" (UntrustedSigner: an operator's key does not speak for the subscriber);
//   8. `now` is before `expires` (Expired);
//   9. `issued` is not after now + kLifecycleClockSkew (InvalidArgument);
//  10. `expires` is after `issued`, by at most kMaxLifecycleLifetime (InvalidArgument).
[[nodiscard]] Result<VerifiedRelease> verify_release(std::string_view jws_compact,
                                                     std::span<const OperatorTrust> operators,
                                                     protocol::Timestamp now);

// Verifies a release signed by the subscriber (JWS compact, ES256; any x5c is not evaluated) with
// the subscriber's public key, a DER SubjectPublicKeyInfo. Checks, in order:
//   1. the text is at most protocol::kMaxLifecycleJwsSize bytes (InvalidArgument);
//   2. the key is an EC P-256 public key (InvalidArgument);
//   3. the text is a JWS (InvalidArgument) whose signature verifies with the key (SignatureInvalid);
//   4. the payload is a release (InvalidArgument);
//   5. signer is "subscriber" (UntrustedSigner: the subscriber's key does not speak for an operator);
//   6–8. the validity window as verify_release's 8–10.
// Whether from_operator is the profile's operator, and whether its rules let the subscriber
// release it, is the caller's to check.
[[nodiscard]] Result<VerifiedRelease> verify_subscriber_release(std::string_view jws_compact,
                                                                std::span<const uint8_t> subscriber_spki_der,
                                                                protocol::Timestamp now);

// Verifies a remote lifecycle command signed by the profile's operator (JWS compact, ES256, x5c).
// Checks, in order: 1–4 as verify_release's (with protocol::kMaxLifecycleJwsSize); the payload
// is a command (InvalidArgument); operator_id is the operator whose anchors the signer chains to
// (UntrustedSigner); then the validity window as verify_release's 8–10.
[[nodiscard]] Result<VerifiedCommand> verify_command(std::string_view jws_compact,
                                                     std::span<const OperatorTrust> operators,
                                                     protocol::Timestamp now);

}  // namespace mcimd::attestation
