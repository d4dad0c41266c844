#pragma once
// The names clients see on the bus: bus name, object paths, interfaces and the fixed error
// names. Shared by the adapter (daemon side) and the client (mcimctl) so both spell them alike.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace mcimd::api {

inline constexpr const char* kBusName = "org.mcimd.Tre1";
inline constexpr const char* kRootPath = "/org/mcimd/Tre1";
inline constexpr const char* kProfilePathPrefix = "/org/mcimd/Tre1/Profile";

inline constexpr const char* kManagerInterface = "org.mcimd.Tre1.Manager";
inline constexpr const char* kProfileInterface = "org.mcimd.Tre1.Profile";
inline constexpr const char* kUsimInterface = "org.mcimd.Tre1.USimApplication";

inline constexpr const char* kErrorPrefix = "org.mcimd.Tre1.Error.";

// Largest profile document InstallProfile reads from the passed descriptor.
inline constexpr std::size_t kMaxProfileDocumentSize = 64 * 1024;

// "/org/mcimd/Tre1/Profile/<index>".
std::string profile_path(uint32_t index);
// The index of a profile object path; nullopt for anything else (other prefix, a sign, leading
// zeros, trailing components, a value beyond uint32_t).
std::optional<uint32_t> parse_profile_path(std::string_view path);

// "org.mcimd.Tre1.Error.<code_name(code)>" for every Code.
std::string error_name(Code code);
// The Code behind one of our error names; nullopt for a foreign name.
std::optional<Code> code_from_error_name(std::string_view name);

// Registers every error name with sd-bus's error map, so sd_bus_error_set() on one of our names
// carries a meaningful errno (NotFound → ENOENT, NotAuthorized → EACCES, ...). Idempotent.
void register_error_map();

}  // namespace mcimd::api
