// MCIM package checks on the device, in the order attestation/package_check.hpp lists them.
#include "attestation/package_check.hpp"

#include <algorithm>

#include "protocol/quote.hpp"

namespace mcimd::attestation {

namespace {

constexpr OperatorDocumentKind kPackageDocument{"package", "MCIM packages", protocol::kMaxPackageSize};

}  // namespace

Result<VerifiedPackage> verify_package(std::string_view compact, std::span<const OperatorTrust> operators,
                                       protocol::Timestamp now) {
  auto document = MCIMD_TRY(verify_operator_jws(compact, operators, now, kPackageDocument));
  auto header = protocol::package_header_from_json(document.payload);
  if (!header) return tl::unexpected(std::move(header).error());
  MCIMD_CHECK(check_speaks_for("package", header->operator_id, *document.signer));
  MCIMD_CHECK(check_validity_window("package", header->issued, header->expires, now,
                                    {kPackageClockSkew, kMaxPackageLifetime}));
  return VerifiedPackage{std::move(*header), document.signer->operator_id, std::move(document.sha256)};
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
