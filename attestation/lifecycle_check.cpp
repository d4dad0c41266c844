// Lifecycle document checks on the device, in the order attestation/lifecycle_check.hpp lists them.
#include "attestation/lifecycle_check.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "attestation/jws.hpp"
#include "attestation/verifier_tpm.hpp"

namespace mcimd::attestation {

namespace {

constexpr OperatorDocumentKind kReleaseDocument{"release", "releases", protocol::kMaxLifecycleJwsSize};
constexpr OperatorDocumentKind kCommandDocument{"command", "lifecycle commands", protocol::kMaxLifecycleJwsSize};
constexpr ValidityLimits kLifecycleLimits{kLifecycleClockSkew, kMaxLifecycleLifetime};

template <class T>
Result<T> unexpected(Error e) {
  return tl::unexpected(std::move(e));
}

Status check_release_signer(const protocol::ReleaseAuthorisation& body, protocol::ReleaseSigner verified_as) {
  if (body.signer != verified_as)
    return fail(Code::UntrustedSigner, "The release says it is signed by the " +
                                           std::string(protocol::wire_name(body.signer)) + " but the " +
                                           std::string(protocol::wire_name(verified_as)) + "'s key signed it");
  return {};
}

Result<EvpPkey> subscriber_key(std::span<const uint8_t> spki_der) {
  const unsigned char* p = spki_der.data();
  EvpPkey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  if (!key || p != spki_der.data() + spki_der.size()) {
    ERR_clear_error();
    return fail(Code::InvalidArgument, "The subscriber's key is not a DER SubjectPublicKeyInfo");
  }
  if (!is_p256(key.get())) return fail(Code::InvalidArgument, "The subscriber's key is not an EC P-256 key (ES256)");
  return key;
}

}  // namespace

Result<VerifiedRelease> verify_release(std::string_view compact, std::span<const OperatorTrust> operators,
                                       protocol::Timestamp now) {
  auto document = MCIMD_TRY(verify_operator_jws(compact, operators, now, kReleaseDocument));
  auto body = protocol::release_authorisation_from_json(document.payload);
  if (!body) return unexpected<VerifiedRelease>(std::move(body).error());
  MCIMD_CHECK(check_speaks_for("release", body->from_operator, *document.signer));
  MCIMD_CHECK(check_release_signer(*body, protocol::ReleaseSigner::Operator));
  MCIMD_CHECK(check_validity_window("release", body->issued, body->expires, now, kLifecycleLimits));
  return VerifiedRelease{std::move(*body), document.signer->operator_id, std::move(document.sha256)};
}

Result<VerifiedRelease> verify_subscriber_release(std::string_view compact, std::span<const uint8_t> subscriber_spki_der,
                                                  protocol::Timestamp now) {
  if (compact.size() > protocol::kMaxLifecycleJwsSize)
    return fail(Code::InvalidArgument, "The release is larger than " + std::to_string(protocol::kMaxLifecycleJwsSize) +
                                           " bytes");
  const EvpPkey key = MCIMD_TRY(subscriber_key(subscriber_spki_der));
  auto content = jws_verify(compact, key.get());
  if (!content) {
    // The key form of jws_verify answers NotAuthorized for a signature that does not verify.
    if (content.error().code == Code::NotAuthorized)
      return fail(Code::SignatureInvalid,
                  "The release is not signed by the subscriber's key: " + content.error().message);
    return unexpected<VerifiedRelease>(std::move(content).error());
  }
  const std::string payload(content->payload.begin(), content->payload.end());
  auto body = protocol::release_authorisation_from_json(payload);
  if (!body) return unexpected<VerifiedRelease>(std::move(body).error());
  MCIMD_CHECK(check_release_signer(*body, protocol::ReleaseSigner::Subscriber));
  MCIMD_CHECK(check_validity_window("release", body->issued, body->expires, now, kLifecycleLimits));
  return VerifiedRelease{std::move(*body), std::string(), sha256_of(compact)};
}

Result<VerifiedCommand> verify_command(std::string_view compact, std::span<const OperatorTrust> operators,
                                       protocol::Timestamp now) {
  auto document = MCIMD_TRY(verify_operator_jws(compact, operators, now, kCommandDocument));
  auto body = protocol::operator_command_from_json(document.payload);
  if (!body) return unexpected<VerifiedCommand>(std::move(body).error());
  MCIMD_CHECK(check_speaks_for("command", body->operator_id, *document.signer));
  MCIMD_CHECK(check_validity_window("command", body->issued, body->expires, now, kLifecycleLimits));
  return VerifiedCommand{std::move(*body), document.signer->operator_id, std::move(document.sha256)};
}

}  // namespace mcimd::attestation
