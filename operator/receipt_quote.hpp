#pragma once
// Receipts a device quotes with its AK (install receipts, deletion receipts): the body's exact
// bytes, quoted in the receipt's own quote domain, so a quote made for one receipt — or for any
// other purpose — is never taken for another.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "protocol/quote_domain.hpp"

namespace mcimd::op {

struct QuotedReceipt {
  std::string_view what;  // "install receipt": errors start with it
  std::string_view body;  // the exact bytes the device quoted
  std::span<const uint8_t> quote_message;
  std::span<const uint8_t> quote_signature;
  protocol::QuoteDomain domain;
};

// Verifies a receipt's quote with the device's enrolled AK. Checks, in order:
//   ak         ak_public is an attestation key (InvalidArgument)
//   signature  the quote verifies with the AK (SignatureInvalid)
//   quote      TPM-generated TPMS_ATTEST of type quote (InvalidArgument)
//   binding    its qualifyingData is qualifying_data(domain, body) (SignatureInvalid: the body is
//              not what the TPM quoted, or the quote was made for another purpose)
// The body itself is the caller's to parse and compare.
[[nodiscard]] Status verify_receipt_quote(const QuotedReceipt& receipt, std::span<const uint8_t> ak_public);

// verify_receipt_quote's checks, then the body's: it parses with parse_body (InvalidArgument) and
// its `device` is expected_device (WrongDevice). Returns the parsed body for the caller's
// comparison of the receipt's own fields.
template <class ParseBody>
auto verify_quoted_body(const QuotedReceipt& receipt, std::span<const uint8_t> ak_public,
                        std::string_view expected_device, ParseBody&& parse_body) -> decltype(parse_body(receipt.body)) {
  MCIMD_CHECK(verify_receipt_quote(receipt, ak_public));
  auto body = parse_body(receipt.body);
  if (!body) return fail(Code::InvalidArgument, std::string(receipt.what) + ": " + body.error().message);
  if (body->device != expected_device)
    return fail(Code::WrongDevice, std::string(receipt.what) + ": names device " + body->device + ", expected " +
                                       std::string(expected_device));
  return body;
}

}  // namespace mcimd::op
