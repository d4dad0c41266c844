// MCIM package checks on the device, in the order attestation/package_check.hpp lists them.
#include "attestation/package_check.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <set>

#include "attestation/jws.hpp"
#include "protocol/quote.hpp"

namespace mcimd::attestation {

namespace {

Status check_operators(std::span<const OperatorTrust> operators) {
  if (operators.empty()) return fail(Code::ConfigError, "No operator is trusted to sign MCIM packages");
  std::set<std::string_view> seen;
  for (const auto& op : operators)
    if (!seen.insert(op.operator_id).second)
      return fail(Code::ConfigError, "Operator '" + op.operator_id + "' is configured twice");
  return {};
}

// The one operator whose anchors the signer chains to. The signature is checked first, on the
// first operator's attempt, so a changed package is SignatureInvalid whatever its signer.
Result<const OperatorTrust*> find_signer(std::string_view compact, std::span<const OperatorTrust> operators,
                                         protocol::Timestamp now) {
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
  if (signers.empty())
    return fail(Code::UntrustedSigner, "The package's signer does not chain to the anchors of any trusted operator (" +
                                           reason + ")");
  if (signers.size() > 1) {
    std::string names;
    for (const auto* op : signers) names += (names.empty() ? "'" : ", '") + op->operator_id + "'";
    return fail(Code::UntrustedSigner, "The package's signer chains to the anchors of several operators (" + names +
                                           "): which one it speaks for cannot be told");
  }
  return signers.front();
}

Bytes sha256(std::string_view text) {
  Bytes out(32);
  unsigned len = 0;
  EVP_Digest(text.data(), text.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

Status check_validity(const protocol::PackageHeader& h, protocol::Timestamp now) {
  using protocol::format_timestamp;
  if (now >= h.expires)
    return fail(Code::Expired, "The package expired at " + format_timestamp(h.expires) + " (now " +
                                   format_timestamp(now) + ")");
  if (h.issued > now + kPackageClockSkew)
    return fail(Code::InvalidArgument, "The package is issued at " + format_timestamp(h.issued) +
                                           ", in the future (now " + format_timestamp(now) + ")");
  if (h.expires <= h.issued)
    return fail(Code::InvalidArgument, "The package expires before it is issued");
  if (h.expires - h.issued > kMaxPackageLifetime)
    return fail(Code::InvalidArgument, "The package is valid for more than " +
                                           std::to_string(kMaxPackageLifetime.count()) + " days");
  return {};
}

}  // namespace

Result<VerifiedPackage> verify_package(std::string_view compact, std::span<const OperatorTrust> operators,
                                       protocol::Timestamp now) {
  if (compact.size() > protocol::kMaxPackageSize)
    return fail(Code::InvalidArgument, "The package is larger than " + std::to_string(protocol::kMaxPackageSize) +
                                           " bytes");
  MCIMD_CHECK(check_operators(operators));
  const OperatorTrust* signer = MCIMD_TRY(find_signer(compact, operators, now));
  auto content = jws_verify(compact, JwsTrust{signer->anchors, std::string(kDocumentSigningEku), now});
  if (!content) return tl::unexpected(std::move(content).error());
  const std::string_view payload(reinterpret_cast<const char*>(content->payload.data()), content->payload.size());
  auto header = protocol::package_header_from_json(payload);
  if (!header) return tl::unexpected(std::move(header).error());
  if (header->operator_id != signer->operator_id)
    return fail(Code::UntrustedSigner, "The package names operator '" + header->operator_id +
                                           "' but its signer is trusted for operator '" + signer->operator_id + "' only");
  MCIMD_CHECK(check_validity(*header, now));
  return VerifiedPackage{std::move(*header), signer->operator_id, sha256(compact)};
}

Status check_package_for_device(const protocol::PackageHeader& h, const DeviceExpectations& expect) {
  if (h.device != expect.device)
    return fail(Code::WrongDevice, "The package is for device " + h.device + ", not this one (" + expect.device + ")");
  if (std::none_of(expect.outstanding_nonces.begin(), expect.outstanding_nonces.end(),
                   [&](const Bytes& n) { return n == h.device_nonce; }))
    return fail(Code::Replayed, "The package answers no outstanding package request (device_nonce unknown or used)");
  if (h.counter <= expect.last_counter)
    return fail(Code::Replayed, "The package counter " + std::to_string(h.counter) + " is not above the last accepted, " +
                                    std::to_string(expect.last_counter));
  if (h.srk_name != expect.srk_name)
    return fail(Code::TpmMismatch, "The package was made for SRK " + to_hex(h.srk_name) + ", not this TPM's " +
                                       to_hex(expect.srk_name));
  auto authority = protocol::object_name(h.authority);
  if (!authority) return fail(Code::InvalidArgument, "The package's authority: " + authority.error().message);
  if (*authority != expect.authority_name)
    return fail(Code::InvalidArgument, "The package binds its objects to policy authority " + to_hex(*authority) +
                                           ", not this device's " + to_hex(expect.authority_name));
  if (std::find(expect.algorithms.begin(), expect.algorithms.end(), h.algorithm) == expect.algorithms.end())
    return fail(Code::Unsupported, "The package's algorithm '" + h.algorithm + "' is not implemented");
  if (h.algorithm_parameters)
    return fail(Code::Unsupported, "The package's algorithm '" + h.algorithm +
                                       "' has parameters; only its standard constants are implemented");
  return {};
}

}  // namespace mcimd::attestation
