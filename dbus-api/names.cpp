#include "dbus-api/names.hpp"
#include "dbus-api/service.hpp"

#include <systemd/sd-bus.h>

#include <cerrno>
#include <charconv>

namespace mcimd::api {

std::string profile_path(uint32_t index) { return std::string(kProfilePathPrefix) + "/" + std::to_string(index); }

std::optional<uint32_t> parse_profile_path(std::string_view path) {
  std::string_view prefix = kProfilePathPrefix;
  if (!path.starts_with(prefix)) return std::nullopt;
  path.remove_prefix(prefix.size());
  if (!path.starts_with('/')) return std::nullopt;
  path.remove_prefix(1);
  // Exactly one canonical decimal component: "0" or digits without a leading zero, so that
  // each profile has one path only.
  if (path.empty() || (path.size() > 1 && path.front() == '0')) return std::nullopt;
  for (char c : path)
    if (c < '0' || c > '9') return std::nullopt;
  uint32_t index = 0;
  auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), index);
  if (ec != std::errc() || end != path.data() + path.size()) return std::nullopt;
  return index;
}

std::string_view to_string(ProfileState state) {
  return state == ProfileState::Enabled ? "enabled" : "disabled";
}

std::string_view to_string(ProfileClass profile_class) {
  return profile_class == ProfileClass::Bootstrap ? "bootstrap" : "operational";
}

std::string_view to_string(PlatformState state) {
  switch (state) {
    case PlatformState::Trusted: return "trusted";
    case PlatformState::Changed: return "changed";
    case PlatformState::Unknown: break;
  }
  return "unknown";
}

std::string error_name(Code code) {
  std::string name(kErrorPrefix);
  name += code_name(code);
  return name;
}

namespace {

constexpr Code kAllCodes[] = {
    Code::InvalidArgument,      Code::NotAuthorized, Code::NotFound,    Code::AlreadyExists,
    Code::InvalidState,         Code::MacFailure,    Code::SyncFailure, Code::AmfFailure,
    Code::PlatformStateChanged, Code::TpmFailure,    Code::TpmMismatch, Code::RollbackDetected,
    Code::StoreCorrupt,         Code::ConfigError,   Code::IoError,     Code::Busy,
    Code::StoreTampered,
    Code::Unsupported,          Code::SignatureInvalid, Code::UntrustedSigner, Code::Expired,
    Code::Replayed,             Code::WrongDevice,      Code::UntrustedServer,
    Code::Internal,
};

// sd-bus keeps pointers into this table, so it is static and its names are literals.
// The errno values only help C clients that look at sd_bus_error_get_errno().
const sd_bus_error_map kErrorMap[] = {
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.InvalidArgument", EINVAL),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.NotAuthorized", EACCES),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.NotFound", ENOENT),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.AlreadyExists", EEXIST),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.InvalidState", EBADR),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.MacFailure", EBADMSG),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.SyncFailure", ERANGE),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.AmfFailure", EPROTO),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.PlatformStateChanged", EKEYREVOKED),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.TpmFailure", EIO),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.TpmMismatch", EKEYREJECTED),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.RollbackDetected", ESTALE),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.StoreCorrupt", EUCLEAN),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.StoreTampered", EBADMSG),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.ConfigError", EINVAL),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.IoError", EIO),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.Busy", EBUSY),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.Unsupported", EOPNOTSUPP),
    SD_BUS_ERROR_MAP("org.mcimd.Tre1.Error.Internal", ENOTRECOVERABLE),
    SD_BUS_ERROR_MAP_END,
};

}  // namespace

std::optional<Code> code_from_error_name(std::string_view name) {
  std::string_view prefix = kErrorPrefix;
  if (!name.starts_with(prefix)) return std::nullopt;
  name.remove_prefix(prefix.size());
  for (Code code : kAllCodes)
    if (code_name(code) == name) return code;
  return std::nullopt;
}

void register_error_map() {
  // sd_bus_error_add_map() ignores a table it already knows; a failure (ENOMEM) only loses the
  // errno hints, never the names.
  (void)sd_bus_error_add_map(kErrorMap);
}

}  // namespace mcimd::api
