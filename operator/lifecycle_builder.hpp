#pragma once
// The operator's half of the lifecycle documents (protocol/lifecycle.hpp): signing a release of a
// subscriber's profile to another operator (change of subscription) and remote lifecycle
// commands, and verifying the deletion receipt a gateway returns once it deleted a profile. No
// registry and no network here, like package_builder.hpp: callers supply the device's enrolled
// AK and record what these functions return.
#include <cstdint>
#include <span>
#include <string>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "operator/policy_signing.hpp"
#include "protocol/lifecycle.hpp"

namespace mcimd::op {

// Signs a release as a JWS (ES256, x5c = signer.x5c). Checks first, each InvalidArgument:
//   fields     the release reads back with the device's parser (ids, device, ICCID, operators)
//   window     expires is after issued, by at most attestation::kMaxLifecycleLifetime
//   chain      an operator's release carries the signer's certificate chain (devices find the
//              operator by it); a subscriber's may carry none
// The signer's certificate should carry id-kp-documentSigning: devices refuse others.
[[nodiscard]] Result<std::string> sign_release(const protocol::ReleaseAuthorisation& release,
                                               const PolicySigner& signer);

// Signs a lifecycle command as a JWS (ES256, x5c), after the same checks: fields, window, and a
// non-empty chain.
[[nodiscard]] Result<std::string> sign_command(const protocol::OperatorCommand& command, const PolicySigner& signer);

// What the operator expects a deletion receipt to confirm: the profile it asked to be deleted.
struct ExpectedDeletion {
  std::string device;       // AK name, lower-case hex
  std::string iccid;
  std::string operator_id;  // the deleted profile's operator
};

// Verifies a deletion receipt with the device's enrolled AK. Checks, in order:
//   ak         ak_public is an attestation key (InvalidArgument)
//   signature  the quote verifies with the AK (SignatureInvalid)
//   quote      TPM-generated TPMS_ATTEST of type quote (InvalidArgument)
//   binding    its qualifyingData is qualifying_data(DeletionReceipt, body) (SignatureInvalid:
//              the body is not what the TPM quoted, or the quote was made for another purpose,
//              an install receipt's among them)
//   body       the body parses (InvalidArgument) and names the expected device (WrongDevice),
//              ICCID and operator (InvalidArgument naming the field)
// Returns the body: the NV index and the value the deletion advanced it to are the operator's
// to record.
[[nodiscard]] Result<protocol::DeletionBody> verify_deletion_receipt(const protocol::DeletionReceipt& receipt,
                                                                     std::span<const uint8_t> ak_public,
                                                                     const ExpectedDeletion& expected);

}  // namespace mcimd::op
