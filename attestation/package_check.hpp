#pragma once
// Device-side checks of an MCIM package (TR 33.812 §5.1.3.5) before any TPM sees it: who signed
// it, whether it is still valid, and whether it was made for this device, this request and this
// TPM. mcimd trusts the package's signature, never the channel it came over. No TPM code here:
// that the import blobs load under the SRK with the public areas mcimd accepts is the TPM
// layer's check, made after these.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/operator_jws.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::attestation {

struct VerifiedPackage {
  protocol::PackageHeader header;
  std::string operator_id;  // the operator whose anchors the signer chains to (= header.operator_id)
  Bytes package_sha256;     // SHA-256 of the JWS compact text, as the install receipt reports it
};

inline constexpr auto kPackageClockSkew = std::chrono::minutes{5};
inline constexpr auto kMaxPackageLifetime = std::chrono::days{30};

// Verifies an MCIM package (JWS compact, ES256, x5c) signed by one of `operators` (OperatorTrust:
// attestation/operator_jws.hpp). Checks, in order, each failure its own code:
//   1. the text is at most protocol::kMaxPackageSize bytes, a JWS with an x5c chain (InvalidArgument);
//      at least one operator is configured, each once (ConfigError);
//   2. the signature verifies over the JWS header and payload with the x5c leaf's key
//      (SignatureInvalid: the package changed after it was signed);
//   3. the leaf chains, at `now`, to the anchors of exactly one operator (UntrustedSigner: to
//      none, or to several);
//   4. the leaf is a document signer: extendedKeyUsage id-kp-documentSigning (RFC 9336),
//      keyUsage digitalSignature when present, no CA restricted to other purposes (UntrustedSigner);
//   5. the payload is a package header (protocol::package_header_from_json: InvalidArgument);
//   6. the header names the operator whose anchors the signer chains to (UntrustedSigner: an
//      operator cannot sign for another operator_id);
//   7. `now` is before `expires` (Expired);
//   8. `issued` is not after now + kPackageClockSkew (InvalidArgument);
//   9. `expires` is after `issued`, by at most kMaxPackageLifetime (InvalidArgument).
// The header's JSON is read only once its signer is known.
[[nodiscard]] Result<VerifiedPackage> verify_package(std::string_view jws_compact,
                                                     std::span<const OperatorTrust> operators,
                                                     protocol::Timestamp now);

// What this device expects of a package it asked for (its PackageRequest and its TPM).
struct DeviceExpectations {
  std::string device;                     // this device's AK name, lower-case hex
  std::span<const Bytes> outstanding_nonces;  // device nonces of requests not yet answered
  uint64_t last_counter = 0;              // the highest package counter accepted so far
  Bytes srk_name;                         // TPM name of this TPM's SRK
  Bytes authority_name;                   // TPM name of this device's policy authority
  std::vector<std::string> algorithms;    // what mcimd implements: "milenage"
};

// Whether a verified package is meant for this device now. Checks, in order:
//   1. device is this device (WrongDevice);
//   2. device_nonce is one of the outstanding nonces (Replayed: an answer to no request, or to
//      one already answered);
//   3. counter is above last_counter (Replayed: an older package again);
//   4. srk_name is this TPM's SRK (TpmMismatch: the blobs were made for another TPM);
//   5. authority is this device's policy authority (InvalidArgument naming both names: the
//      objects would answer to an authority the device does not use, so a platform state it
//      never approved could unlock them; the package is wrong, no caller lacks a right);
//   6. the algorithm is one mcimd implements, without parameters (Unsupported, naming it).
[[nodiscard]] Status check_package_for_device(const protocol::PackageHeader& header,
                                              const DeviceExpectations& expect);

}  // namespace mcimd::attestation
