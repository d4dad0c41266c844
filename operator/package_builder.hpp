#pragma once
// The operator's half of remote provisioning (TR 33.812 §5.1.3.5): checking a gateway's package
// request, building the MCIM package for that gateway's TPM, and verifying the install receipt it
// returns. No registry and no network here: the server and the batch tool supply the device's
// enrolled AK, the session's nonce and the subscription, and record what these functions return.
#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "operator/policy_signing.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::op {

// A request's checks that need only the request, the enrolled AK and the session, in order:
//   device     the request names the device whose AK is ak_public (WrongDevice)
//   nonce      operator_nonce is the session's, and the evidence answers it (Replayed)
//   device nonce   kProvisioningNonceSize bytes (InvalidArgument)
//   srk        the SRK certification verifies: AK signature, TPM2_Certify of srk_public, over
//              qualifying_data(SrkCertification, operator nonce ‖ device nonce)
//              (attestation::verify_srk_certification's codes)
//   authority  a P-256 signing key's public area (InvalidArgument)
//   algorithm  the device implements "milenage" (Unsupported)
// The evidence itself (quote, logs, policy) is verify_device's to judge, with the registry.
[[nodiscard]] Status check_package_request(const protocol::PackageRequest& request,
                                           std::span<const uint8_t> ak_public,
                                           std::span<const uint8_t> session_nonce);

// The subscription an operator provisions: the MCIM's secrets and its settings.
struct McimCredentials {
  std::string iccid;
  std::string imsi;
  SecureBytes k;    // 16 bytes
  SecureBytes opc;  // 16 bytes
  std::array<uint8_t, 2> amf{0x80, 0x00};
  protocol::SqnSettings sqn;
  protocol::ProfileRules rules;
  std::string profile_class = "operational";
  // The subscriber's key (DER SubjectPublicKeyInfo, P-256): the device then also accepts change
  // of subscription releases the subscriber signs.
  std::optional<Bytes> subscriber_key;
};

struct PackageOrder {
  std::string package_id;
  std::string operator_id;
  uint64_t counter = 0;  // the registry's next counter for the device: above the request's
  protocol::Timestamp issued;
  std::chrono::seconds lifetime = std::chrono::hours{24};
  // New credentials for the device's installed profile with the subscription's ICCID.
  bool rekey = false;
};

struct BuiltPackage {
  std::string jws;  // the package as the device installs it
  protocol::PackageHeader header;
  Bytes sha256;     // of jws, as the receipt names it
};

// Builds the package for a checked request: K as an imported AES key object and OPc as an
// imported sealed object, both made for the request's SRK and bound to PolicyAuthorize(request's
// authority, kPcrPolicyRef), the header echoing the device, its nonce and the counter, signed as
// a JWS by signer (whose certificate should carry id-kp-documentSigning: devices refuse others).
// InvalidArgument for a counter not above the request's, an order or subscription the header
// format refuses, or secrets of the wrong size; the secrets' copies are wiped.
[[nodiscard]] Result<BuiltPackage> build_package(const protocol::PackageRequest& request, const McimCredentials& mcim,
                                                 const PackageOrder& order, const PolicySigner& signer);

// What the operator expects a receipt to confirm: the package it issued.
struct ExpectedReceipt {
  std::string package_id;
  std::string device;
  uint64_t counter = 0;
  Bytes package_sha256;
  std::string iccid;
};

// Verifies an install receipt with the device's enrolled AK. Checks, in order:
//   ak         ak_public is an attestation key (InvalidArgument)
//   signature  the quote verifies with the AK (SignatureInvalid)
//   quote      TPM-generated TPMS_ATTEST of type quote (InvalidArgument)
//   binding    its qualifyingData is qualifying_data(InstallReceipt, body) (SignatureInvalid:
//              the body is not what the TPM quoted)
//   body       the body parses (InvalidArgument) and names the expected package, device,
//              counter, package digest and ICCID (WrongDevice for another device, else
//              InvalidArgument naming the field)
// Returns the body.
[[nodiscard]] Result<protocol::ReceiptBody> verify_install_receipt(const protocol::InstallReceipt& receipt,
                                                                   std::span<const uint8_t> ak_public,
                                                                   const ExpectedReceipt& expected);

// The device id an AK gives: its TPM name in lower-case hex.
[[nodiscard]] Result<std::string> device_id_of(std::span<const uint8_t> ak_public);

}  // namespace mcimd::op
