#include "operator/receipt_quote.hpp"

#include <string>

#include "attestation/verifier_tpm.hpp"

namespace mcimd::op {

Status verify_receipt_quote(const QuotedReceipt& receipt, std::span<const uint8_t> ak_public) {
  const std::string what(receipt.what);
  auto ak = attestation::parse_tpm_public(ak_public);
  if (!ak) return fail(Code::InvalidArgument, what + ": AK: " + ak.error().message);
  MCIMD_CHECK(attestation::check_attestation_key(*ak));
  if (auto sig = attestation::verify_signature(*ak, receipt.quote_message, receipt.quote_signature); !sig)
    return fail(Code::SignatureInvalid,
                what + ": the quote does not verify with the device's AK: " + sig.error().message);
  auto attest = attestation::parse_attest(receipt.quote_message);
  if (!attest) return fail(Code::InvalidArgument, what + ": quote: " + attest.error().message);
  if (attest->magic != attestation::kTpmGeneratedValue || attest->type != attestation::kTpmStAttestQuote)
    return fail(Code::InvalidArgument, what + ": the signed structure is not a TPM-generated quote");
  const std::span<const uint8_t> body(reinterpret_cast<const uint8_t*>(receipt.body.data()), receipt.body.size());
  if (attest->extra_data != protocol::qualifying_data(receipt.domain, body))
    return fail(Code::SignatureInvalid, what + ": the quote was not made over this receipt body in the " +
                                            std::string(protocol::short_name(receipt.domain)) + " domain");
  return {};
}

}  // namespace mcimd::op
