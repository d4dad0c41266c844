#pragma once
// The oFono compatibility: the objects an oFono client needs to authenticate with the active
// profile, served under the name org.ofono on mcimd's own connection. iwd's EAP-SIM/AKA/AKA'
// speaks only oFono's API; mcimd's USimApplication already has oFono's wire signatures, but under
// its own names, where such a client does not look.
//
// Objects (oFono's doc/manager-api.txt, modem-api.txt, sim-api.txt, simauth-api.txt):
//   /               org.ofono.Manager           GetModems; signals ModemAdded, ModemRemoved
//   /mcimd_0        org.ofono.Modem             GetProperties; signal PropertyChanged
//                   org.ofono.SimManager        GetProperties (Present, SubscriberIdentity,
//                                               MobileCountryCode, MobileNetworkCode)
//                   org.ofono.SimAuthentication GetProperties (NetworkAccessIdentity),
//                                               GetApplications
//   /mcimd_0/usim   org.ofono.USimApplication   UmtsAuthenticate, GsmAuthenticate, GetProperties
// The modem and its application exist while a profile is active; GetModems lists the modem
// then, and ModemAdded / ModemRemoved announce it coming and going (a change of active profile
// is a removal and an addition: another subscriber, another identity). The application's
// methods are the profile objects' own handlers (profile_dbus.hpp) run on the active profile:
// the same checks, the same asynchronous answers, the same org.mcimd.Tre1.Error.* names.
//
// Every method call on /, /mcimd_0 and below passes the same caller checks as mcimd's own objects
// (bus_filter.hpp, authorize_call()): GetModems, GetProperties and GetApplications need the read
// access of property reads, the authentications the modem role's; anything unlisted needs Manage.
#include <functional>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "dbus-api/access.hpp"
#include "dbus-api/bus_handles.hpp"
#include "dbus-api/profile_dbus.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::api {

inline constexpr const char* kOfonoBusName = "org.ofono";
inline constexpr const char* kOfonoManagerPath = "/";
inline constexpr const char* kOfonoModemPath = "/mcimd_0";
inline constexpr const char* kOfonoApplicationPath = "/mcimd_0/usim";

inline constexpr const char* kOfonoManagerInterface = "org.ofono.Manager";
inline constexpr const char* kOfonoModemInterface = "org.ofono.Modem";
inline constexpr const char* kOfonoSimManagerInterface = "org.ofono.SimManager";
inline constexpr const char* kOfonoSimAuthenticationInterface = "org.ofono.SimAuthentication";
inline constexpr const char* kOfonoUsimInterface = "org.ofono.USimApplication";

// What oFono's SimManager and SimAuthentication tell of a subscriber.
struct OfonoSubscriber {
  std::string mcc;  // MobileCountryCode
  std::string mnc;  // MobileNetworkCode, 2 or 3 digits
  std::string nai;  // NetworkAccessIdentity (TS 23.003 §19.3.2)
};

struct OfonoCompatOptions {
  // The subscriber a profile is. The IMSI does not say how long its MNC is, so the daemon decides
  // (its configuration, the operator id); an error's message says what to configure. Without
  // an answer, the three properties are left out, with a warning logged once per profile.
  std::function<Result<OfonoSubscriber>(const ProfileInfo&)> subscriber;
};

class OfonoCompat {
 public:
  // Registers the objects and their caller filter on `bus`, then requests org.ofono. Fails when a
  // registration fails or the name cannot be had (owned by a running oFono, or refused by the bus
  // policy), saying which. `profiles` must outlive the object.
  [[nodiscard]] static Result<std::unique_ptr<OfonoCompat>> create(sd_bus* bus, ProfileObjects& profiles,
                                                                   AccessPolicy policy, OfonoCompatOptions options);
  // Unregisters the objects and releases the name.
  ~OfonoCompat();
  OfonoCompat(const OfonoCompat&) = delete;
  OfonoCompat& operator=(const OfonoCompat&) = delete;

  // The Service's active profile may have changed: ModemRemoved for the modem announced before,
  // ModemAdded for the one there is now. Failures to emit are logged and ignored.
  void active_profile_changed() noexcept;

  // What the registrations point at (ofono_compat.cpp).
  struct State;

 private:
  explicit OfonoCompat(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// What each method of the oFono interfaces needs (bus_filter.cpp consults them).
extern const InterfaceAccess ofono_manager_access;
extern const InterfaceAccess ofono_modem_access;
extern const InterfaceAccess ofono_sim_manager_access;
extern const InterfaceAccess ofono_sim_authentication_access;
extern const InterfaceAccess ofono_usim_access;

}  // namespace mcimd::api
