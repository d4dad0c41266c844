#include "daemon/ofono_subscriber.hpp"

#include <string>

#include "aka/identity.hpp"

namespace mcimd::daemon {

Result<api::OfonoSubscriber> ofono_subscriber(const api::ProfileInfo& profile, std::optional<int> mnc_length) {
  auto nai = aka::network_access_identifier(profile.imsi, profile.operator_id, mnc_length);
  if (!nai) {
    // With a length given the IMSI itself is wrong; without, say what to configure, unless the
    // IMSI would be wrong whatever the length.
    if (mnc_length || !aka::network_access_identifier(profile.imsi, profile.operator_id, /*mnc_length=*/2))
      return tl::unexpected(nai.error());
    return fail(Code::InvalidArgument, "its operator id '" + profile.operator_id +
                                           "' is not the MCC and MNC its IMSI begins with, so the MNC's length is "
                                           "unknown: set dbus.ofono-compat-mnc-length to 2 or 3");
  }
  // Without a configured length, the NAI was told by the operator id, which is MCC+MNC.
  const auto length = static_cast<std::size_t>(mnc_length.value_or(static_cast<int>(profile.operator_id.size()) - 3));
  return api::OfonoSubscriber{profile.imsi.substr(0, 3), profile.imsi.substr(3, length), std::move(*nai)};
}

}  // namespace mcimd::daemon
