// Operator-signed documents on the device, in the order attestation/operator_jws.hpp lists the checks.
#include "attestation/operator_jws.hpp"

#include <openssl/evp.h>

#include <set>
#include <vector>

#include "attestation/jws.hpp"

namespace mcimd::attestation {

namespace {

Status check_operators(std::span<const OperatorTrust> operators, const OperatorDocumentKind& kind) {
  if (operators.empty())
    return fail(Code::ConfigError, "No operator is trusted to sign " + std::string(kind.signed_what));
  std::set<std::string_view> seen;
  for (const auto& op : operators)
    if (!seen.insert(op.operator_id).second)
      return fail(Code::ConfigError, "Operator '" + op.operator_id + "' is configured twice");
  return {};
}

// The one operator whose anchors the signer chains to. The signature is checked first, on the
// first operator's attempt, so a changed document is SignatureInvalid whatever its signer.
Result<const OperatorTrust*> find_signer(std::string_view compact, std::span<const OperatorTrust> operators,
                                         protocol::Timestamp now, const OperatorDocumentKind& kind) {
  std::vector<const OperatorTrust*> signers;
  std::string reason;
  for (const auto& op : operators) {
    auto r = jws_verify(compact, JwsTrust{op.anchors, std::nullopt, now});
    if (r) {
      signers.push_back(&op);
    } else if (r.error().code == Code::UntrustedSigner) {
      reason = r.error().message;
    } else {
      return tl::unexpected(std::move(r).error());
    }
  }
  const std::string whose = "The " + std::string(kind.noun) + "'s signer";
  if (signers.empty())
    return fail(Code::UntrustedSigner, whose + " does not chain to the anchors of any trusted operator (" + reason + ")");
  if (signers.size() > 1) {
    std::string names;
    for (const auto* op : signers) names += (names.empty() ? "'" : ", '") + op->operator_id + "'";
    return fail(Code::UntrustedSigner, whose + " chains to the anchors of several operators (" + names +
                                           "): which one it speaks for cannot be told");
  }
  return signers.front();
}

}  // namespace

Bytes sha256_of(std::string_view text) {
  Bytes out(32);
  unsigned len = 0;
  EVP_Digest(text.data(), text.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

Result<OperatorSignedDocument> verify_operator_jws(std::string_view compact, std::span<const OperatorTrust> operators,
                                                   protocol::Timestamp now, const OperatorDocumentKind& kind) {
  if (compact.size() > kind.max_size)
    return fail(Code::InvalidArgument, "The " + std::string(kind.noun) + " is larger than " +
                                           std::to_string(kind.max_size) + " bytes");
  MCIMD_CHECK(check_operators(operators, kind));
  const OperatorTrust* signer = MCIMD_TRY(find_signer(compact, operators, now, kind));
  auto content = jws_verify(compact, JwsTrust{signer->anchors, std::string(kDocumentSigningEku), now});
  if (!content) return tl::unexpected(std::move(content).error());
  OperatorSignedDocument out;
  out.signer = signer;
  out.payload.assign(content->payload.begin(), content->payload.end());
  out.sha256 = sha256_of(compact);
  return out;
}

Status check_speaks_for(std::string_view noun, std::string_view named_operator, const OperatorTrust& signer) {
  if (named_operator != signer.operator_id)
    return fail(Code::UntrustedSigner, "The " + std::string(noun) + " names operator '" + std::string(named_operator) +
                                           "' but its signer is trusted for operator '" + signer.operator_id + "' only");
  return {};
}

Status check_validity_window(std::string_view noun, protocol::Timestamp issued, protocol::Timestamp expires,
                             protocol::Timestamp now, const ValidityLimits& limits) {
  using protocol::format_timestamp;
  const std::string the = "The " + std::string(noun);
  if (now >= expires)
    return fail(Code::Expired, the + " expired at " + format_timestamp(expires) + " (now " + format_timestamp(now) + ")");
  if (issued > now + limits.clock_skew)
    return fail(Code::InvalidArgument, the + " is issued at " + format_timestamp(issued) + ", in the future (now " +
                                           format_timestamp(now) + ")");
  if (expires <= issued) return fail(Code::InvalidArgument, the + " expires before it is issued");
  if (expires - issued > limits.max_lifetime)
    return fail(Code::InvalidArgument, the + " is valid for more than " + std::to_string(limits.max_lifetime.count()) +
                                           " days");
  return {};
}

}  // namespace mcimd::attestation
