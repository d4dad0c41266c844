// The lifecycle documents as JSON (protocol/lifecycle.hpp): writers, and parsers as strict as the
// provisioning messages', with the same field readers.
#include "protocol/lifecycle.hpp"

#include <array>

#include "protocol/json_fields.hpp"

namespace mcimd::protocol {

using namespace detail;

namespace {

constexpr std::string_view kReleaseFormat = "mcimd-release-1";
constexpr std::string_view kCommandFormat = "mcimd-command-1";
constexpr std::string_view kDeletionBodyFormat = "mcimd-deletion-receipt-body-1";
constexpr std::string_view kDeletionReceiptFormat = "mcimd-deletion-receipt-1";

// Wire names, in the order of each enumeration's values.
constexpr std::array<std::string_view, 2> kSignerNames = {"operator", "subscriber"};
constexpr std::array<std::string_view, 5> kCommandNames = {"enable", "disable", "delete", "fallback", "restore"};
constexpr std::array<std::string_view, 3> kReasonNames = {"change-of-subscription", "command", "local"};

// TPM 2.0 Part 2 §7.2: an NV index handle has TPM_HT_NV_INDEX (0x01) in its most significant octet.
constexpr uint32_t kNvIndexHandleType = 0x01;

template <std::size_t N>
std::string_view name_of(const std::array<std::string_view, N>& names, auto value) {
  const auto i = static_cast<std::size_t>(value);
  return i < N ? names[i] : std::string_view{};
}

template <class Enum, std::size_t N>
std::optional<Enum> from_name(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == name) return static_cast<Enum>(i);
  return std::nullopt;
}

template <class Enum, std::size_t N>
Result<Enum> read_enum(Reader& r, std::string_view field, const std::array<std::string_view, N>& names) {
  return static_cast<Enum>(MCIMD_TRY(read_choice(r, field, names)));
}

Result<uint32_t> read_nv_index(Reader& r) {
  const auto v = static_cast<uint32_t>(MCIMD_TRY(r.unsigned_integer("nv_index", UINT32_MAX)));
  if (v >> 24 != kNvIndexHandleType)
    return fail(Code::InvalidArgument, r.name("nv_index") + " is not an NV index handle (0x01000000-0x01ffffff)");
  return v;
}

}  // namespace

std::string_view wire_name(ReleaseSigner signer) { return name_of(kSignerNames, signer); }
std::string_view wire_name(CommandKind command) { return name_of(kCommandNames, command); }
std::string_view wire_name(DeletionReason reason) { return name_of(kReasonNames, reason); }

std::optional<ReleaseSigner> release_signer_from_name(std::string_view name) {
  return from_name<ReleaseSigner>(kSignerNames, name);
}
std::optional<CommandKind> command_kind_from_name(std::string_view name) {
  return from_name<CommandKind>(kCommandNames, name);
}
std::optional<DeletionReason> deletion_reason_from_name(std::string_view name) {
  return from_name<DeletionReason>(kReasonNames, name);
}

// --- release ---------------------------------------------------------------------------------------------
std::string to_json(const ReleaseAuthorisation& m) {
  return dump({{"format", kReleaseFormat},
               {"release_id", m.release_id},
               {"device", m.device},
               {"iccid", m.iccid},
               {"from_operator", m.from_operator},
               {"to_operator", m.to_operator},
               {"counter", m.counter},
               {"issued", format_timestamp(m.issued)},
               {"expires", format_timestamp(m.expires)},
               {"signer", wire_name(m.signer)}});
}

Result<ReleaseAuthorisation> release_authorisation_from_json(std::string_view text) {
  return read_document<ReleaseAuthorisation>(
      text, "release", kMaxLifecycleBodySize, [](Reader& r) -> Result<ReleaseAuthorisation> {
        MCIMD_CHECK(r.format(kReleaseFormat));
        ReleaseAuthorisation m;
        m.release_id = MCIMD_TRY(read_id(r, "release_id", /*dot=*/true));
        m.device = MCIMD_TRY(read_device(r, "device"));
        m.iccid = MCIMD_TRY(read_iccid(r, "iccid"));
        m.from_operator = MCIMD_TRY(read_operator_id(r, "from_operator"));
        m.to_operator = MCIMD_TRY(read_operator_id(r, "to_operator"));
        m.counter = MCIMD_TRY(r.unsigned_integer("counter"));
        m.issued = MCIMD_TRY(read_time(r, "issued"));
        m.expires = MCIMD_TRY(read_time(r, "expires"));
        m.signer = MCIMD_TRY(read_enum<ReleaseSigner>(r, "signer", kSignerNames));
        return m;
      });
}

// --- command ---------------------------------------------------------------------------------------------
std::string to_json(const OperatorCommand& m) {
  return dump({{"format", kCommandFormat},
               {"command_id", m.command_id},
               {"device", m.device},
               {"iccid", m.iccid},
               {"operator_id", m.operator_id},
               {"command", wire_name(m.command)},
               {"counter", m.counter},
               {"issued", format_timestamp(m.issued)},
               {"expires", format_timestamp(m.expires)}});
}

Result<OperatorCommand> operator_command_from_json(std::string_view text) {
  return read_document<OperatorCommand>(text, "command", kMaxLifecycleBodySize,
                                        [](Reader& r) -> Result<OperatorCommand> {
                                          MCIMD_CHECK(r.format(kCommandFormat));
                                          OperatorCommand m;
                                          m.command_id = MCIMD_TRY(read_id(r, "command_id", /*dot=*/true));
                                          m.device = MCIMD_TRY(read_device(r, "device"));
                                          m.iccid = MCIMD_TRY(read_iccid(r, "iccid"));
                                          m.operator_id = MCIMD_TRY(read_operator_id(r, "operator_id"));
                                          m.command = MCIMD_TRY(read_enum<CommandKind>(r, "command", kCommandNames));
                                          m.counter = MCIMD_TRY(r.unsigned_integer("counter"));
                                          m.issued = MCIMD_TRY(read_time(r, "issued"));
                                          m.expires = MCIMD_TRY(read_time(r, "expires"));
                                          return m;
                                        });
}

// --- deletion receipt --------------------------------------------------------------------------------------
std::string to_json(const DeletionBody& m) {
  return dump({{"format", kDeletionBodyFormat},
               {"device", m.device},
               {"iccid", m.iccid},
               {"operator_id", m.operator_id},
               {"profile", m.profile},
               {"reason", wire_name(m.reason)},
               {"nv_index", m.nv_index},
               {"nv_value", m.nv_value}});
}

Result<DeletionBody> deletion_body_from_json(std::string_view text) {
  return read_document<DeletionBody>(
      text, "deletion_body", kMaxLifecycleBodySize, [](Reader& r) -> Result<DeletionBody> {
        MCIMD_CHECK(r.format(kDeletionBodyFormat));
        DeletionBody m;
        m.device = MCIMD_TRY(read_device(r, "device"));
        m.iccid = MCIMD_TRY(read_iccid(r, "iccid"));
        m.operator_id = MCIMD_TRY(read_operator_id(r, "operator_id"));
        m.profile = static_cast<uint32_t>(MCIMD_TRY(r.unsigned_integer("profile", UINT32_MAX)));
        m.reason = MCIMD_TRY(read_enum<DeletionReason>(r, "reason", kReasonNames));
        m.nv_index = MCIMD_TRY(read_nv_index(r));
        m.nv_value = MCIMD_TRY(r.unsigned_integer("nv_value"));
        return m;
      });
}

std::string to_json(const DeletionReceipt& m) { return quoted_document_json(m, kDeletionReceiptFormat); }

Result<DeletionReceipt> deletion_receipt_from_json(std::string_view text) {
  return quoted_document_from_json<DeletionReceipt>(text, "deletion_receipt", kDeletionReceiptFormat,
                                                    kMaxLifecycleBodySize, deletion_body_from_json);
}

}  // namespace mcimd::protocol
