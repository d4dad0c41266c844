#pragma once
// Conversions the service files share: store metadata to the D-Bus view, fixed-size arrays from
// caller bytes, secrets into locked buffers.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "aka/block_cipher.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "dbus-api/service.hpp"
#include "mcim-store/store.hpp"
#include "protocol/provisioning.hpp"

namespace mcimd::daemon::detail {

// Now, to the second, as signed documents state times.
inline protocol::Timestamp now_utc() {
  return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

// The end of the profile's subsidy lock while it holds (a subsidised profile stays with its
// operator until then); nullopt when it has none or it has ended.
inline std::optional<protocol::Timestamp> subsidy_lock(const store::ProfileMetadata& m) {
  const auto& until = m.rules.locked_until;
  if (!until || static_cast<uint64_t>(now_utc().time_since_epoch().count()) >= *until) return std::nullopt;
  return protocol::Timestamp{std::chrono::seconds{*until}};
}

inline api::ProfileInfo to_info(const store::ProfileMetadata& m) {
  return api::ProfileInfo{m.id,
                          m.index,
                          m.iccid,
                          m.imsi,
                          m.operator_id,
                          m.state == store::ProfileState::Enabled ? api::ProfileState::Enabled
                                                                  : api::ProfileState::Disabled,
                          m.profile_class == store::ProfileClass::Bootstrap ? api::ProfileClass::Bootstrap
                                                                            : api::ProfileClass::Operational};
}

template <class Array>
Result<Array> to_array(const Bytes& b, std::string_view what) {
  Array a{};
  if (b.size() != a.size())
    return fail(Code::InvalidArgument,
                std::string(what) + " must be " + std::to_string(a.size()) + " bytes, got " + std::to_string(b.size()));
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

inline Result<aka::Block> to_block(const SecureBytes& b, std::string_view what) {
  aka::Block a{};
  if (b.size() != a.size()) return fail(Code::StoreCorrupt, std::string(what) + " has the wrong length");
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

template <class Array>
SecureBytes secure(const Array& a) {
  return SecureBytes(a.begin(), a.end());
}

inline bool same_info(const api::ProfileInfo& a, const api::ProfileInfo& b) {
  return a.id == b.id && a.iccid == b.iccid && a.imsi == b.imsi && a.operator_id == b.operator_id &&
         a.state == b.state && a.profile_class == b.profile_class;
}


}  // namespace mcimd::daemon::detail
