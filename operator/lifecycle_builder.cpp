#include "operator/lifecycle_builder.hpp"

#include <string_view>

#include "attestation/jws.hpp"
#include "attestation/lifecycle_check.hpp"
#include "operator/receipt_quote.hpp"
#include "protocol/quote_domain.hpp"

namespace mcimd::op {
namespace {

// What sign_release and sign_command check before signing: what devices would refuse anyway is
// refused here, by its field's name, not at the gateway.
struct SignedDocument {
  std::string_view noun;  // "release"
  std::string payload;    // its JSON
  protocol::Timestamp issued;
  protocol::Timestamp expires;
  bool chain_required = true;
};

template <class Parse>
Result<std::string> sign_document(const SignedDocument& d, Parse&& parse, const PolicySigner& signer) {
  const std::string noun(d.noun);
  // Read back with the device's own parser: a bad ICCID or an id with a space fails here.
  MCIMD_CHECK(parse(d.payload));
  if (d.expires <= d.issued) return fail(Code::InvalidArgument, noun + ": expires before it is issued");
  if (d.expires - d.issued > attestation::kMaxLifecycleLifetime)
    return fail(Code::InvalidArgument, noun + ": valid for more than " +
                                           std::to_string(attestation::kMaxLifecycleLifetime.count()) +
                                           " days, which devices refuse");
  if (d.chain_required && signer.x5c.empty())
    return fail(Code::InvalidArgument, noun + ": the signer has no certificate chain; devices find the operator by it");
  return attestation::jws_sign({reinterpret_cast<const uint8_t*>(d.payload.data()), d.payload.size()},
                               signer.key.get(), signer.x5c);
}

}  // namespace

Result<std::string> sign_release(const protocol::ReleaseAuthorisation& release, const PolicySigner& signer) {
  return sign_document({"release", protocol::to_json(release), release.issued, release.expires,
                        /*chain_required=*/release.signer == protocol::ReleaseSigner::Operator},
                       protocol::release_authorisation_from_json, signer);
}

Result<std::string> sign_command(const protocol::OperatorCommand& command, const PolicySigner& signer) {
  return sign_document({"command", protocol::to_json(command), command.issued, command.expires,
                        /*chain_required=*/true},
                       protocol::operator_command_from_json, signer);
}

Result<protocol::DeletionBody> verify_deletion_receipt(const protocol::DeletionReceipt& receipt,
                                                       std::span<const uint8_t> ak_public,
                                                       const ExpectedDeletion& expected) {
  auto body = MCIMD_TRY(verify_quoted_body({"deletion receipt", receipt.body, receipt.quote_message,
                                             receipt.quote_signature, protocol::QuoteDomain::DeletionReceipt},
                                            ak_public, expected.device, protocol::deletion_body_from_json));
  auto mismatch = [](std::string_view field) {
    return fail(Code::InvalidArgument, "deletion receipt: " + std::string(field) + " is not the deleted profile's");
  };
  if (body.iccid != expected.iccid) return mismatch("iccid");
  if (body.operator_id != expected.operator_id) return mismatch("operator_id");
  return body;
}

}  // namespace mcimd::op
