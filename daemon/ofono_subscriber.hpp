#pragma once
// What the oFono compatibility (dbus.ofono-compat) tells oFono clients of a profile: its MCC, MNC
// and WLAN network access identifier.
#include <optional>

#include "common/error.hpp"
#include "dbus-api/ofono_compat.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::daemon {

// TS 23.003 §2.2: the IMSI begins with the 3-digit MCC and the 2- or 3-digit MNC; `mnc_length`
// (dbus.ofono-compat-mnc-length) says which, or else an operator id that is the MCC+MNC the IMSI
// begins with (aka::network_access_identifier). InvalidArgument for an IMSI that is not 6 to 15
// digits, and, naming dbus.ofono-compat-mnc-length, when the MNC's length cannot be told.
[[nodiscard]] Result<api::OfonoSubscriber> ofono_subscriber(const api::ProfileInfo& profile,
                                                            std::optional<int> mnc_length);

}  // namespace mcimd::daemon
