#pragma once
// Remote provisioning (TR 33.812 §5.1.3.5, "MCIM provisioning"): the messages between a gateway
// (mcimd, through the provisioning agent) and the operator it chose. JSON, binary fields
// base64url without padding, TPM structures marshaled, times RFC 3339 UTC ("2027-01-31T12:00:00Z").
//
//   agent → operator   POST /v1/sessions        ProvisioningSessionRequest
//   operator → agent                            ProvisioningSession: the operator's nonce, expiry
//   agent → mcimd      Manager.RequestPackage(operator nonce)
//   mcimd → agent                               PackageRequest: evidence for the operator's nonce,
//                                               the SRK certified by the AK, mcimd's own nonce, its
//                                               last package counter, its policy authority
//   agent → operator   POST /v1/packages        the PackageRequest
//   operator → agent                            an MCIM package: JWS (ES256, x5c) over PackageHeader
//   agent → mcimd      Manager.InstallPackage(package)
//   mcimd → agent                               InstallReceipt, quoted by the AK in its own domain
//   agent → operator   POST /v1/receipts        the InstallReceipt
//
// mcimd trusts the package's signature, never the channel: the agent and the network may be
// the attacker's. Every message that could be replayed carries a nonce or a counter and an expiry.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/evidence.hpp"
#include "protocol/pcr_policy.hpp"

namespace mcimd::protocol {

using Timestamp = std::chrono::sys_seconds;
// RFC 3339 in UTC with a "Z" and whole seconds; InvalidArgument for anything else.
[[nodiscard]] Result<Timestamp> parse_timestamp(std::string_view text);
std::string format_timestamp(Timestamp t);

inline constexpr std::size_t kProvisioningNonceSize = 32;  // operator's and device's nonces

// Size limits the parsers enforce (InvalidArgument naming the document beyond them). The package
// request carries the evidence with its logs and is bounded by kMaxDocumentSize instead.
inline constexpr std::size_t kMaxIdLength = 64;                       // session, package, subscription ids
inline constexpr std::size_t kMaxProvisioningMessageSize = 64u << 10;  // session messages, receipts, errors
inline constexpr std::size_t kMaxPackageHeaderSize = 64u << 10;       // two import blobs and an authority: ~4 KiB
inline constexpr std::size_t kMaxPackageSize = 256u << 10;            // the JWS compact text: header and x5c chain

// ---- session (operator → agent) ---------------------------------------------------------------
// {"format":"mcimd-provisioning-session-request-1","device":HEX,"subscription":STR?}
//   device: the AK name in lower-case hex (the operator's device id after enrolment)
//   subscription: an existing subscription of the operator to link the device to (subscriber's
//   choice), [A-Za-z0-9._-]{1,64}; absent = a new subscription
struct ProvisioningSessionRequest {
  std::string device;
  std::optional<std::string> subscription;
  bool operator==(const ProvisioningSessionRequest&) const = default;
};
// {"format":"mcimd-provisioning-session-1","session":STR,"nonce":B64,"expires":TIME}
struct ProvisioningSession {
  std::string session;  // [A-Za-z0-9_-]{1,64}
  Bytes nonce;          // kProvisioningNonceSize random bytes
  Timestamp expires;
  bool operator==(const ProvisioningSession&) const = default;
};

// ---- package request (mcimd → operator) -------------------------------------------------------
// TPM2_Certify of the SRK by the AK (TPM 2.0 Part 3 §18.2): proves the SRK public key the package
// is to be made for is in the enrolled TPM. Its qualifyingData is
// qualifying_data(QuoteDomain::SrkCertification, operator_nonce ‖ device_nonce).
struct Certification {
  Bytes message;    // marshaled TPMS_ATTEST (type TPM_ST_ATTEST_CERTIFY)
  Bytes signature;  // marshaled TPMT_SIGNATURE
  bool operator==(const Certification&) const = default;
};
// {"format":"mcimd-package-request-1","session":STR,"device":HEX,"operator_nonce":B64,
//  "device_nonce":B64,"counter":UINT,"srk_public":B64,"srk_certification":{"message":B64,
//  "signature":B64},"authority":B64,"algorithms":["milenage"],"evidence":{…mcimd-evidence-1…},
//  "deletion":{"nv_index":UINT,"value":UINT}}
struct PackageRequest {
  std::string session;       // the operator's session id, echoed
  std::string device;        // AK name, lower-case hex
  Bytes operator_nonce;      // from the session; also the evidence's nonce
  Bytes device_nonce;        // mcimd's: the package must echo it (kProvisioningNonceSize bytes)
  uint64_t counter = 0;      // the last package counter mcimd accepted; the package's must be above
  Bytes srk_public;          // marshaled TPM2B_PUBLIC of the SRK (ECC P-256 or RSA 2048)
  Certification srk_certification;
  Bytes authority;           // marshaled TPM2B_PUBLIC of mcimd's policy authority (PolicyAuthorize)
  std::vector<std::string> algorithms;  // what mcimd implements: "milenage"
  Evidence evidence;         // remote validation, in QuoteDomain::OperatorEvidence over operator_nonce
  // The deletion counter mcimd set aside for the profile: the objects' authPolicy must be
  // bound_policy_digest(authority, kPcrPolicyRef, deletion).
  DeletionBinding deletion;
  bool operator==(const PackageRequest&) const = default;
};

// ---- MCIM package (operator → mcimd) -------------------------------------------------------------
// A TPM2 duplication blob made for one parent key (TPM 2.0 Part 1 §23.3.2, Part 3 §13.3
// TPM2_Import): outer wrapper only (symmetricAlg TPM_ALG_NULL, no inner wrapper), seed to the
// SRK (ECC: ephemeral ECDH + KDFe "DUPLICATE"; RSA: OAEP with label "DUPLICATE\0").
struct ImportBlob {
  Bytes public_area;  // marshaled TPM2B_PUBLIC of the object (fixedTPM and fixedParent clear)
  Bytes duplicate;    // marshaled TPM2B_PRIVATE
  Bytes seed;         // marshaled TPM2B_ENCRYPTED_SECRET
  bool operator==(const ImportBlob&) const = default;
};

// Profile rules (enforced by mcimd, the lifecycle work): what the subscriber and others may do.
struct ProfileRules {
  bool disable_allowed = true;
  bool delete_allowed = true;
  std::optional<Timestamp> locked_until;  // subsidy lock: no change of operator before
  bool fallback_allowed = true;           // switching to the bootstrap profile
  bool operator==(const ProfileRules&) const = default;
};

struct SqnSettings {
  unsigned ind_bits = 5;
  uint64_t delta = 1ull << 28;
  uint64_t age_limit = 0;
  bool require_amf_separation = false;
  uint64_t initial = 0;  // < 2^48
  bool operator==(const SqnSettings&) const = default;
};

// {"format":"mcimd-package-1","package_id":STR,"device":HEX,"device_nonce":B64,"counter":UINT,
//  "issued":TIME,"expires":TIME,"operator_id":STR,"iccid":DIGITS,"imsi":DIGITS,
//  "class":"operational"|"bootstrap","algorithm":{"name":"milenage"},"amf":HEX4,
//  "sqn":{"ind_bits":U,"delta":U,"age_limit":U,"require_amf_separation":B,"initial":U},
//  "rules":{"disable_allowed":B,"delete_allowed":B,"locked_until":TIME|null,"fallback_allowed":B},
//  "srk_name":B64,"authority":B64,
//  "k":{"public":B64,"duplicate":B64,"seed":B64},"opc":{"public":B64,"duplicate":B64,"seed":B64},
//  "deletion":{"nv_index":UINT,"value":UINT},"subscriber_key":B64|null,"rekey":B}
// algorithm: only "milenage" with the TS 35.206 constants is implemented; any other name (or
// parameters) is kept as parsed and refused by the installer as Unsupported, by name.
struct PackageHeader {
  std::string package_id;    // [A-Za-z0-9._-]{1,64}
  std::string device;        // AK name, lower-case hex
  Bytes device_nonce;        // echo of the request's
  uint64_t counter = 0;      // per device, strictly increasing
  Timestamp issued;
  Timestamp expires;
  std::string operator_id;   // must be the operator whose anchor verified the signature
  std::string iccid;         // 18–20 digits
  std::string imsi;          // 6–15 digits
  std::string profile_class = "operational";
  std::string algorithm = "milenage";
  std::optional<std::string> algorithm_parameters;  // JSON text of anything besides "name"; refused when set
  std::array<uint8_t, 2> amf{0x80, 0x00};
  SqnSettings sqn;
  ProfileRules rules;
  Bytes srk_name;            // TPM name of the SRK the blobs were made for
  Bytes authority;           // marshaled TPM2B_PUBLIC: the authPolicy's PolicyAuthorize key
  ImportBlob k;              // AES-128 key object (encrypt only, ECB)
  ImportBlob opc;            // sealed data object (KEYEDHASH, 16 bytes)
  DeletionBinding deletion;  // echo of the request's: K and OPc are bound to it
  // A re-key: new K and OPc (and algorithm) for the installed profile with this ICCID, which keeps
  // its SQN state; the old credentials are kept until the new ones have authenticated once.
  bool rekey = false;
  // DER SubjectPublicKeyInfo (EC P-256) of the subscriber: releases it signs are accepted for
  // this profile (change of subscription by the subscriber). Absent: only the operator's.
  std::optional<Bytes> subscriber_key;
  bool operator==(const PackageHeader&) const = default;
};

// ---- install receipt (mcimd → operator) -----------------------------------------------------------
// {"format":"mcimd-install-receipt-1","body":B64,"quote_message":B64,"quote_signature":B64}
// body: the JSON bytes of ReceiptBody; the quote's qualifyingData is
// qualifying_data(QuoteDomain::InstallReceipt, body bytes) and it quotes sha256:7 (no PCR
// evaluation: the quote binds the receipt to the enrolled AK and the TPM's clock).
// ReceiptBody: {"format":"mcimd-install-receipt-body-1","package_id":STR,"device":HEX,
//  "counter":UINT,"package_sha256":B64,"iccid":DIGITS,"profile":UINT,"class":STR}
struct ReceiptBody {
  std::string package_id;
  std::string device;
  uint64_t counter = 0;
  Bytes package_sha256;  // SHA-256 of the package's JWS compact text
  std::string iccid;
  uint32_t profile = 0;  // D-Bus object index
  std::string profile_class = "operational";
  bool operator==(const ReceiptBody&) const = default;
};
struct InstallReceipt {
  std::string body;  // exact JSON bytes that were quoted
  Bytes quote_message;
  Bytes quote_signature;
  bool operator==(const InstallReceipt&) const = default;
};

// ---- errors (operator → agent, HTTP 4xx/5xx bodies) ------------------------------------------------
// {"format":"mcimd-error-1","code":NAME,"message":STR}  code: common/error.hpp's code_name
struct ProtocolError {
  std::string code;
  std::string message;
  bool operator==(const ProtocolError&) const = default;
};

// JSON forms. Parsing is strict like the evidence's: unknown or missing fields, wrong types,
// oversized members, bad base64url, malformed TPM structures → InvalidArgument naming the field.
std::string to_json(const ProvisioningSessionRequest& m);
[[nodiscard]] Result<ProvisioningSessionRequest> session_request_from_json(std::string_view text);
std::string to_json(const ProvisioningSession& m);
[[nodiscard]] Result<ProvisioningSession> session_from_json(std::string_view text);
std::string to_json(const PackageRequest& m);
[[nodiscard]] Result<PackageRequest> package_request_from_json(std::string_view text);
std::string to_json(const PackageHeader& m);
[[nodiscard]] Result<PackageHeader> package_header_from_json(std::string_view text);
std::string to_json(const ReceiptBody& m);
[[nodiscard]] Result<ReceiptBody> receipt_body_from_json(std::string_view text);
std::string to_json(const InstallReceipt& m);
[[nodiscard]] Result<InstallReceipt> install_receipt_from_json(std::string_view text);
std::string to_json(const ProtocolError& m);
[[nodiscard]] Result<ProtocolError> protocol_error_from_json(std::string_view text);

}  // namespace mcimd::protocol
