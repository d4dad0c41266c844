#include "operator/package_builder.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "attestation/duplication.hpp"
#include "attestation/jws.hpp"
#include "attestation/verifier_tpm.hpp"
#include "operator/receipt_quote.hpp"
#include "protocol/pcr_policy.hpp"
#include "protocol/quote_domain.hpp"

namespace mcimd::op {
namespace {

namespace alg = attestation::alg;

Bytes concat(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The policy authority must be a key the device's TPM can check a PolicyAuthorize signature
// with: P-256 ECDSA, as protocol::policy_authority_from_pem makes it.
Status check_authority(std::span<const uint8_t> authority) {
  auto pub = attestation::parse_tpm_public(authority);
  if (!pub) return fail(Code::InvalidArgument, "package request: authority: " + pub.error().message);
  if (pub->type != alg::kEcc || pub->curve != 0x0003 || (pub->attributes & attestation::attr::kSign) == 0)
    return fail(Code::InvalidArgument, "package request: authority: not a P-256 signing key");
  return {};
}

}  // namespace

Result<std::string> device_id_of(std::span<const uint8_t> ak_public) {
  auto pub = attestation::parse_tpm_public(ak_public);
  if (!pub) return fail(Code::InvalidArgument, "AK public area: " + pub.error().message);
  return to_hex(pub->name);
}

Status check_package_request(const protocol::PackageRequest& request, std::span<const uint8_t> ak_public,
                             std::span<const uint8_t> session_nonce) {
  const std::string device = MCIMD_TRY(device_id_of(ak_public));
  if (request.device != device)
    return fail(Code::WrongDevice, "package request: names device " + request.device + ", the session is for " + device);
  if (!std::ranges::equal(request.operator_nonce, session_nonce))
    return fail(Code::Replayed, "package request: operator nonce is not the session's");
  if (!std::ranges::equal(request.evidence.nonce, session_nonce))
    return fail(Code::Replayed, "package request: the evidence does not answer the session's nonce");
  if (!std::ranges::equal(request.evidence.ak_public, ak_public))
    return fail(Code::WrongDevice, "package request: the evidence is signed by another AK than the device's");
  if (request.device_nonce.size() != protocol::kProvisioningNonceSize)
    return fail(Code::InvalidArgument, "package request: device nonce is not " +
                                           std::to_string(protocol::kProvisioningNonceSize) + " bytes");
  const Bytes qualifying = protocol::qualifying_data(protocol::QuoteDomain::SrkCertification,
                                                     concat(request.operator_nonce, request.device_nonce));
  MCIMD_CHECK(attestation::verify_srk_certification(ak_public, request.srk_certification, request.srk_public,
                                                    qualifying));
  MCIMD_CHECK(check_authority(request.authority));
  if (std::ranges::find(request.algorithms, "milenage") == request.algorithms.end())
    return fail(Code::Unsupported, "package request: the device implements no algorithm this operator provisions "
                                   "(milenage)");
  return {};
}

Result<BuiltPackage> build_package(const protocol::PackageRequest& request, const McimCredentials& subscription,
                                   const PackageOrder& order, const PolicySigner& signer) {
  if (order.counter <= request.counter)
    return fail(Code::InvalidArgument, "package counter " + std::to_string(order.counter) +
                                           " is not above the device's last accepted " + std::to_string(request.counter));
  if (subscription.k.size() != 16) return fail(Code::InvalidArgument, "subscription: K is not 16 bytes");
  if (subscription.opc.size() != 16) return fail(Code::InvalidArgument, "subscription: OPc is not 16 bytes");
  if (order.lifetime <= std::chrono::seconds{0}) return fail(Code::InvalidArgument, "package lifetime must be positive");

  // The authority's name only: check_package_request validated the key itself.
  const std::span<const uint8_t> authority(request.authority);
  if (authority.size() < 6 || (std::size_t{authority[0]} << 8 | authority[1]) != authority.size() - 2)
    return fail(Code::InvalidArgument, "package request: authority: not a TPM2B_PUBLIC");
  const Bytes authority_name = MCIMD_TRY(
      attestation::tpm_name(static_cast<uint16_t>(authority[4] << 8 | authority[5]), authority.subspan(2)));
  // Bound to the authority and to the profile's deletion counter the device set aside: once the
  // device deletes the profile, no copy of these objects is usable again.
  const Bytes auth_policy =
      protocol::bound_policy_digest(authority_name, as_bytes(protocol::kPcrPolicyRef), request.deletion);
  // The SRK parsed and validated once for both blobs and its name.
  const auto parent = MCIMD_TRY(attestation::import_parent(request.srk_public));

  protocol::PackageHeader h;
  h.package_id = order.package_id;
  h.device = request.device;
  h.device_nonce = request.device_nonce;
  h.counter = order.counter;
  h.issued = order.issued;
  h.expires = order.issued + order.lifetime;
  h.operator_id = order.operator_id;
  h.iccid = subscription.iccid;
  h.imsi = subscription.imsi;
  h.profile_class = subscription.profile_class;
  h.amf = subscription.amf;
  h.sqn = subscription.sqn;
  h.rules = subscription.rules;
  h.srk_name = parent.key.name;
  h.authority = request.authority;
  h.deletion = request.deletion;
  h.rekey = order.rekey;
  h.subscriber_key = subscription.subscriber_key;
  h.k = MCIMD_TRY(attestation::make_aes_key_import(parent, subscription.k, auth_policy));
  h.opc = MCIMD_TRY(attestation::make_sealed_import(parent, subscription.opc, auth_policy));

  // Read back what was written, with the device's own parser: a header the device would refuse
  // (a bad ICCID, an id with a space) is refused here, by its field's name, not at the gateway.
  const std::string payload = protocol::to_json(h);
  MCIMD_CHECK(protocol::package_header_from_json(payload));

  BuiltPackage out;
  out.jws = MCIMD_TRY(attestation::jws_sign(as_bytes(payload), signer.key.get(), signer.x5c));
  out.sha256 = MCIMD_TRY(attestation::hash(alg::kSha256, as_bytes(out.jws)));
  out.header = std::move(h);
  return out;
}

Result<protocol::ReceiptBody> verify_install_receipt(const protocol::InstallReceipt& receipt,
                                                     std::span<const uint8_t> ak_public,
                                                     const ExpectedReceipt& expected) {
  auto body = MCIMD_TRY(verify_quoted_body({"install receipt", receipt.body, receipt.quote_message,
                                             receipt.quote_signature, protocol::QuoteDomain::InstallReceipt},
                                            ak_public, expected.device, protocol::receipt_body_from_json));
  auto mismatch = [](std::string_view field) {
    return fail(Code::InvalidArgument, "install receipt: " + std::string(field) + " is not the issued package's");
  };
  if (body.package_id != expected.package_id) return mismatch("package_id");
  if (body.counter != expected.counter) return mismatch("counter");
  if (body.package_sha256 != expected.package_sha256) return mismatch("package_sha256");
  if (body.iccid != expected.iccid) return mismatch("iccid");
  return body;
}

}  // namespace mcimd::op
