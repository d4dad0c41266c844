#pragma once
// Lifecycle documents (TR 33.812's change of subscription, and the operator's management of a
// provisioned MCIM). Same conventions as protocol/provisioning.hpp: JSON, binary
// fields base64url without padding, times RFC 3339 UTC, device = the AK name in lower-case hex.
//
//   current operator (or subscriber) → device   a release: JWS (ES256) over ReleaseAuthorisation,
//                                                letting the profile ICCID move to another operator
//   profile's operator → device                 a command: JWS (ES256, x5c) over OperatorCommand
//   device → operator                           DeletionReceipt: DeletionBody quoted by the AK in
//                                                QuoteDomain::DeletionReceipt, naming the NV index
//                                                advanced so the deleted objects can never load again
//
// Each signed document names the device, the profile's ICCID, a counter and a validity window,
// so a document for one device, profile or moment is refused for any other.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::protocol {

// Size limits the parsers enforce (InvalidArgument beyond them); a deletion receipt, like an
// install receipt, is at most kMaxProvisioningMessageSize.
inline constexpr std::size_t kMaxLifecycleBodySize = 4096;       // a release, command or deletion body
inline constexpr std::size_t kMaxLifecycleJwsSize = 64u << 10;   // a signed release or command: body and x5c

// ---- release (current operator or subscriber → device) -------------------------------------------
// Who signed a release: the operator the profile belongs to (x5c chain to its anchors), or the
// subscriber with a key the device holds for that profile (TR 33.812: where the rules allow it).
enum class ReleaseSigner { Operator, Subscriber };

// {"format":"mcimd-release-1","release_id":STR,"device":HEX,"iccid":DIGITS,"from_operator":STR,
//  "to_operator":STR,"counter":UINT,"issued":TIME,"expires":TIME,"signer":"operator"|"subscriber"}
struct ReleaseAuthorisation {
  std::string release_id;     // [A-Za-z0-9._-]{1,64}
  std::string device;         // AK name, lower-case hex
  std::string iccid;          // the released profile, 18–20 digits
  std::string from_operator;  // the profile's operator_id (printable ASCII, 1–64)
  std::string to_operator;    // the operator the subscription moves to
  uint64_t counter = 0;       // per device, strictly increasing
  Timestamp issued;
  Timestamp expires;
  ReleaseSigner signer = ReleaseSigner::Operator;
  bool operator==(const ReleaseAuthorisation&) const = default;
};

// ---- remote command (profile's operator → device) --------------------------------------------------
// enable, disable and delete act on the named profile; fallback switches to the bootstrap profile
// and restore back to the named one.
enum class CommandKind { Enable, Disable, Delete, Fallback, Restore };

// {"format":"mcimd-command-1","command_id":STR,"device":HEX,"iccid":DIGITS,"operator_id":STR,
//  "command":"enable"|"disable"|"delete"|"fallback"|"restore","counter":UINT,"issued":TIME,
//  "expires":TIME}
struct OperatorCommand {
  std::string command_id;   // [A-Za-z0-9._-]{1,64}
  std::string device;       // AK name, lower-case hex
  std::string iccid;        // the profile acted on, 18–20 digits
  std::string operator_id;  // the profile's operator: must be the one whose anchors verify
  CommandKind command = CommandKind::Disable;
  uint64_t counter = 0;     // per device, strictly increasing
  Timestamp issued;
  Timestamp expires;
  bool operator==(const OperatorCommand&) const = default;
};

// ---- deletion receipt (device → operator) ---------------------------------------------------------------
// Why a profile was deleted: for a release (change of subscription), an operator's command, or the
// gateway's administrator where the rules allow.
enum class DeletionReason { ChangeOfSubscription, Command, Local };

// {"format":"mcimd-deletion-receipt-body-1","device":HEX,"iccid":DIGITS,"operator_id":STR,
//  "profile":UINT32,"reason":"change-of-subscription"|"command"|"local","nv_index":UINT32,
//  "nv_value":UINT64}
// nv_index: the NV index (TPM 2.0 Part 2 §7.2, handle type TPM_HT_NV_INDEX 0x01) bound into the
// deleted objects' policy; nv_value: its value after the deletion advanced it.
struct DeletionBody {
  std::string device;
  std::string iccid;
  std::string operator_id;
  uint32_t profile = 0;  // D-Bus object index the profile had
  DeletionReason reason = DeletionReason::Command;
  uint32_t nv_index = 0;
  uint64_t nv_value = 0;
  bool operator==(const DeletionBody&) const = default;
};

// {"format":"mcimd-deletion-receipt-1","body":B64,"quote_message":B64,"quote_signature":B64}
// body: the JSON bytes of DeletionBody; the quote's qualifyingData is
// qualifying_data(QuoteDomain::DeletionReceipt, body bytes), as InstallReceipt's is in its domain.
struct DeletionReceipt {
  std::string body;  // exact JSON bytes that were quoted
  Bytes quote_message;
  Bytes quote_signature;
  bool operator==(const DeletionReceipt&) const = default;
};

// Wire names of the enumerations ("operator", "disable", "change-of-subscription", …), and back.
std::string_view wire_name(ReleaseSigner signer);
std::string_view wire_name(CommandKind command);
std::string_view wire_name(DeletionReason reason);
std::optional<ReleaseSigner> release_signer_from_name(std::string_view name);
std::optional<CommandKind> command_kind_from_name(std::string_view name);
std::optional<DeletionReason> deletion_reason_from_name(std::string_view name);

// JSON forms. Parsing is strict like provisioning.hpp's: unknown, repeated or missing fields,
// wrong types, values outside their rule, documents over their size limit, bad base64url and
// malformed TPM structures → InvalidArgument naming the field ("release.iccid", …).
std::string to_json(const ReleaseAuthorisation& m);
[[nodiscard]] Result<ReleaseAuthorisation> release_authorisation_from_json(std::string_view text);
std::string to_json(const OperatorCommand& m);
[[nodiscard]] Result<OperatorCommand> operator_command_from_json(std::string_view text);
std::string to_json(const DeletionBody& m);
[[nodiscard]] Result<DeletionBody> deletion_body_from_json(std::string_view text);
std::string to_json(const DeletionReceipt& m);
[[nodiscard]] Result<DeletionReceipt> deletion_receipt_from_json(std::string_view text);

}  // namespace mcimd::protocol
