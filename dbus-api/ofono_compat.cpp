#include "dbus-api/ofono_compat.hpp"

#include <cerrno>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/log.hpp"
#include "dbus-api/bus_filter.hpp"
#include "dbus-api/bus_reply.hpp"

namespace mcimd::api {

// What the registrations point at; declared before the slots so that the slots unregister first.
struct OfonoCompat::State {
  SdBusRef bus;
  ProfileObjects& profiles;  // userdata of the application's find function
  AccessPolicy policy;
  OfonoCompatOptions options;
  // The profile the modem stands for during one call: set by the modem's find function.
  ProfileInfo modem;
  // The store id of the profile last announced as the modem (ModemAdded); none when none is.
  std::optional<std::string> announced;
  // Profiles whose subscriber could not be told: warned about once each.
  std::set<std::string> warned;
  bool owns_name = false;
  std::vector<SdBusSlot> slots;  // the filter's and every vtable's

  State(sd_bus* b, ProfileObjects& p, AccessPolicy a, OfonoCompatOptions o)
      : bus(sd_bus_ref(b)), profiles(p), policy(std::move(a)), options(std::move(o)) {}
};

namespace {

using State = OfonoCompat::State;

State& state_of(void* userdata) { return *static_cast<State*>(userdata); }

// oFono's application type of a USIM: SIM (GSM) and UMTS AKA capable (doc/simauth-api.txt).
constexpr const char* kApplicationType = "Umts";
constexpr const char* kApplicationName = "USim";

Status check(int r, std::string_view what) {
  if (r >= 0) return {};
  return fail(Code::IoError, "Failed to " + std::string(what) + ": " + errno_text(r));
}

// Answers a call at once with what `append` writes into the method return.
template <class Append>
int reply_with(sd_bus_message* call, Append&& append) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_return(call, &raw);
  if (r < 0) return r;
  SdBusMessage reply(raw);
  r = append(reply.get());
  if (r < 0) return r;
  return sd_bus_send(nullptr, reply.get(), nullptr);
}

// The modem's a{sv} (doc/modem-api.txt). An oFono client looks for the interfaces it needs in
// Interfaces (iwd: org.ofono.SimAuthentication); the modem is always on, as a SIM slot is.
int append_modem_properties(sd_bus_message* m) {
  return sd_bus_message_append(m, "a{sv}", 5,                                                          //
                               "Interfaces", "as", 2, kOfonoSimManagerInterface, kOfonoSimAuthenticationInterface,  //
                               "Powered", "b", 1,                                                       //
                               "Online", "b", 1,                                                        //
                               "Name", "s", "mcimd",                                                    //
                               "Type", "s", "hardware");
}

// The application's a{sv} (doc/simauth-api.txt): iwd reads Type.
int append_application_properties(sd_bus_message* m) {
  return sd_bus_message_append(m, "a{sv}", 2, "Type", "s", kApplicationType, "Name", "s", kApplicationName);
}

// oFono's lists of objects with their properties, a(oa{sv}) (GetModems: `entry` a struct) or
// a{oa{sv}} (GetApplications: `entry` a dict entry), here with the object at `path` or, without
// a path, none.
int append_object_list(sd_bus_message* m, char entry, const char* path, int (*append_properties)(sd_bus_message*)) {
  int r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, entry == SD_BUS_TYPE_STRUCT ? "(oa{sv})" : "{oa{sv}}");
  if (r < 0) return r;
  if (path) {
    r = sd_bus_message_open_container(m, entry, "oa{sv}");
    if (r < 0) return r;
    r = sd_bus_message_append(m, "o", path);
    if (r < 0) return r;
    r = append_properties(m);
    if (r < 0) return r;
    r = sd_bus_message_close_container(m);
    if (r < 0) return r;
  }
  return sd_bus_message_close_container(m);
}

int append_string_entry(sd_bus_message* m, const char* key, const std::string& value) {
  return sd_bus_message_append(m, "{sv}", key, "s", value.c_str());
}

// The subscriber the active profile is, or nullopt with a warning, once per profile.
std::optional<OfonoSubscriber> subscriber_of(State& state, const ProfileInfo& profile) {
  if (!state.options.subscriber) return std::nullopt;
  auto subscriber = state.options.subscriber(profile);
  if (subscriber) return std::move(*subscriber);
  if (state.warned.insert(profile.id).second)
    log::warning("Failed to tell oFono clients the network access identifier of profile " + profile.iccid + ": " +
                 subscriber.error().message + ", ignoring.");
  return std::nullopt;
}

// ---- / org.ofono.Manager ----

int method_get_modems(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "GetModems", [&]() -> int {
    const bool present = active_profile_info(state_of(userdata).profiles.catalog()).has_value();
    return reply_with(m, [&](sd_bus_message* reply) {
      return append_object_list(reply, SD_BUS_TYPE_STRUCT, present ? kOfonoModemPath : nullptr,
                                append_modem_properties);
    });
  });
}

// ---- /mcimd_0: org.ofono.Modem, org.ofono.SimManager, org.ofono.SimAuthentication ----

// sd_bus_object_find_t: the modem exists while a profile is active; `*found` is the State, its
// `modem` that profile.
int modem_find(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error* ret_error) {
  return guarded(ret_error, "oFono modem lookup", [&]() -> int {
    if (std::string_view(path) != kOfonoModemPath) return 0;
    State& state = state_of(userdata);
    auto active = active_profile_info(state.profiles.catalog());
    if (!active) return 0;
    state.modem = std::move(*active);
    *found = &state;
    return 1;
  });
}

int method_get_modem_properties(sd_bus_message* m, void*, sd_bus_error* ret_error) {
  return guarded(ret_error, "Modem.GetProperties", [&]() -> int { return reply_with(m, append_modem_properties); });
}

int method_get_sim_properties(sd_bus_message* m, void* found, sd_bus_error* ret_error) {
  return guarded(ret_error, "SimManager.GetProperties", [&]() -> int {
    State& state = state_of(found);
    const ProfileInfo profile = state.modem;
    auto subscriber = subscriber_of(state, profile);
    return reply_with(m, [&](sd_bus_message* reply) {
      int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "{sv}");
      if (r < 0) return r;
      r = sd_bus_message_append(reply, "{sv}", "Present", "b", 1);
      if (r < 0) return r;
      r = append_string_entry(reply, "SubscriberIdentity", profile.imsi);
      if (r < 0) return r;
      if (subscriber) {
        r = append_string_entry(reply, "MobileCountryCode", subscriber->mcc);
        if (r < 0) return r;
        r = append_string_entry(reply, "MobileNetworkCode", subscriber->mnc);
        if (r < 0) return r;
      }
      return sd_bus_message_close_container(reply);
    });
  });
}

int method_get_sim_authentication_properties(sd_bus_message* m, void* found, sd_bus_error* ret_error) {
  return guarded(ret_error, "SimAuthentication.GetProperties", [&]() -> int {
    State& state = state_of(found);
    auto subscriber = subscriber_of(state, state.modem);
    return reply_with(m, [&](sd_bus_message* reply) {
      int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "{sv}");
      if (r < 0) return r;
      // iwd offers the SIM for EAP only with an identity: without one it is left out.
      if (subscriber) {
        r = append_string_entry(reply, "NetworkAccessIdentity", subscriber->nai);
        if (r < 0) return r;
      }
      return sd_bus_message_close_container(reply);
    });
  });
}

int method_get_applications(sd_bus_message* m, void*, sd_bus_error* ret_error) {
  return guarded(ret_error, "GetApplications", [&]() -> int {
    return reply_with(m, [](sd_bus_message* reply) {
      return append_object_list(reply, SD_BUS_TYPE_DICT_ENTRY, kOfonoApplicationPath, append_application_properties);
    });
  });
}

// ---- /mcimd_0/usim: org.ofono.USimApplication ----

// sd_bus_object_find_t: the application exists while a profile is active; `*found` is that
// profile's ProfileObject, as the profile objects' handlers expect.
int application_find(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error* ret_error) {
  return guarded(ret_error, "oFono application lookup", [&]() -> int {
    if (std::string_view(path) != kOfonoApplicationPath) return 0;
    ProfileObjects& profiles = state_of(userdata).profiles;
    auto active = active_profile_info(profiles.catalog());
    ProfileObject* object = active ? profiles.look_up(active->index) : nullptr;
    if (!object) return 0;
    *found = object;
    return 1;
  });
}

int method_get_application_properties(sd_bus_message* m, void*, sd_bus_error* ret_error) {
  return guarded(ret_error, "USimApplication.GetProperties",
                 [&]() -> int { return reply_with(m, append_application_properties); });
}

// ---- the caller filter ----

bool is_ofono_path(std::string_view path) {
  std::string_view modem = kOfonoModemPath;
  return path == kOfonoManagerPath || path == modem ||
         (path.starts_with(modem) && path.size() > modem.size() && path[modem.size()] == '/');
}

// Covers / and /mcimd_0 with everything below it, whether an object is there or not, so that a
// caller without a role learns nothing of them; other paths are left to filter_authorize() and
// sd-bus.
int filter_ofono(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  if (!sd_bus_message_is_method_call(m, nullptr, nullptr)) return 0;
  const char* path = sd_bus_message_get_path(m);
  if (!path || !is_ofono_path(path)) return 0;
  return authorize_call(m, state_of(userdata).policy, ret_error);
}

// ---- vtables and what their methods need ----

const sd_bus_vtable ofono_manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("GetModems", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(oa{sv})", modems), method_get_modems,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_ARGS("ModemAdded", SD_BUS_ARGS("o", path, "a{sv}", properties), 0),
    SD_BUS_SIGNAL_WITH_ARGS("ModemRemoved", SD_BUS_ARGS("o", path), 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable ofono_modem_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("GetProperties", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", properties),
                            method_get_modem_properties, SD_BUS_VTABLE_UNPRIVILEGED),
    // Declared for the clients that subscribe to it; the modem's properties never change (another
    // profile is another modem).
    SD_BUS_SIGNAL_WITH_ARGS("PropertyChanged", SD_BUS_ARGS("s", name, "v", value), 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable ofono_sim_manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("GetProperties", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", properties),
                            method_get_sim_properties, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable ofono_sim_authentication_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("GetProperties", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", properties),
                            method_get_sim_authentication_properties, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GetApplications", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{oa{sv}}", applications),
                            method_get_applications, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

// oFono's USimApplication: the profile objects' handlers for the authentications.
const sd_bus_vtable ofono_usim_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("GetProperties", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", properties),
                            method_get_application_properties, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("UmtsAuthenticate", SD_BUS_ARGS("ay", rand, "ay", autn), SD_BUS_RESULT("a{say}", result),
                            method_umts_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GsmAuthenticate", SD_BUS_ARGS("aay", rands), SD_BUS_RESULT("aa{say}", results),
                            method_gsm_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

constexpr MemberAccess kManagerMembers[] = {{"GetModems", Access::Read}};
constexpr MemberAccess kPropertiesMembers[] = {{"GetProperties", Access::Read}};
constexpr MemberAccess kSimAuthenticationMembers[] = {{"GetProperties", Access::Read},
                                                      {"GetApplications", Access::Read}};
constexpr MemberAccess kUsimMembers[] = {
    {"GetProperties", Access::Read},
    {"UmtsAuthenticate", Access::Authenticate},
    {"GsmAuthenticate", Access::Authenticate},
};

void log_emit_failure(int r, std::string_view what) {
  if (r >= 0) return;
  log::warning("Failed to emit " + std::string(what) + " for " + kOfonoModemPath + ": " + errno_text(r) +
               ", ignoring.");
}

int emit_modem_added(sd_bus* bus) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_signal(bus, &raw, kOfonoManagerPath, kOfonoManagerInterface, "ModemAdded");
  if (r < 0) return r;
  SdBusMessage signal(raw);
  r = sd_bus_message_append(signal.get(), "o", kOfonoModemPath);
  if (r < 0) return r;
  r = append_modem_properties(signal.get());
  if (r < 0) return r;
  return sd_bus_send(bus, signal.get(), nullptr);
}

// Why the name could not be had, and what to do about it.
Error name_refused(int r) {
  std::string why = std::string("Failed to acquire the bus name ") + kOfonoBusName + ": ";
  if (r == -EEXIST)
    return Error{Code::AlreadyExists,
                 why + "another connection owns it (a running oFono?); the oFono compatibility cannot serve beside "
                       "it: stop that program or turn the compatibility off (dbus.ofono-compat: false)",
                 std::nullopt};
  if (r == -EACCES || r == -EPERM)
    return Error{Code::NotAuthorized,
                 why + "the bus policy refuses it; install the policy mcimd-ofono-compat.conf (docs/iwd.md) or turn "
                       "the compatibility off (dbus.ofono-compat: false)",
                 std::nullopt};
  return Error{Code::IoError, why + errno_text(r), std::nullopt};
}

}  // namespace

constinit const InterfaceAccess ofono_manager_access{kOfonoManagerInterface, kManagerMembers};
constinit const InterfaceAccess ofono_modem_access{kOfonoModemInterface, kPropertiesMembers};
constinit const InterfaceAccess ofono_sim_manager_access{kOfonoSimManagerInterface, kPropertiesMembers};
constinit const InterfaceAccess ofono_sim_authentication_access{kOfonoSimAuthenticationInterface,
                                                                kSimAuthenticationMembers};
constinit const InterfaceAccess ofono_usim_access{kOfonoUsimInterface, kUsimMembers};

OfonoCompat::OfonoCompat(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<OfonoCompat>> OfonoCompat::create(sd_bus* bus, ProfileObjects& profiles, AccessPolicy policy,
                                                          OfonoCompatOptions options) {
  if (!bus) return fail(Code::InvalidArgument, "No bus connection given");
  std::unique_ptr<OfonoCompat> compat(
      new OfonoCompat(std::make_unique<State>(bus, profiles, std::move(policy), std::move(options))));
  State& s = *compat->state_;
  sd_bus_slot* slot = nullptr;
  MCIMD_CHECK(check(sd_bus_add_filter(bus, &slot, filter_ofono, &s), "install the oFono objects' authorisation filter"));
  s.slots.emplace_back(slot);
  MCIMD_CHECK(check(sd_bus_add_object_vtable(bus, &slot, kOfonoManagerPath, kOfonoManagerInterface,
                                             ofono_manager_vtable, &s),
                    std::string("register ") + kOfonoManagerInterface));
  s.slots.emplace_back(slot);
  // The modem's and the application's objects come and go with the active profile: fallback
  // vtables whose find functions accept their one path while a profile is active.
  struct Registration {
    const char* path;
    const char* interface;
    const sd_bus_vtable* vtable;
    sd_bus_object_find_t find;
  };
  const Registration objects[] = {
      {kOfonoModemPath, kOfonoModemInterface, ofono_modem_vtable, modem_find},
      {kOfonoModemPath, kOfonoSimManagerInterface, ofono_sim_manager_vtable, modem_find},
      {kOfonoModemPath, kOfonoSimAuthenticationInterface, ofono_sim_authentication_vtable, modem_find},
      {kOfonoApplicationPath, kOfonoUsimInterface, ofono_usim_vtable, application_find},
  };
  for (const Registration& object : objects) {
    MCIMD_CHECK(check(sd_bus_add_fallback_vtable(bus, &slot, object.path, object.interface, object.vtable, object.find, &s),
                      std::string("register ") + object.interface));
    s.slots.emplace_back(slot);
  }
  // What GetModems answers now needs no announcement.
  if (auto active = active_profile_info(profiles.catalog())) s.announced = active->id;
  int r = sd_bus_request_name(bus, kOfonoBusName, 0);
  if (r < 0) return tl::unexpected(name_refused(r));
  s.owns_name = true;
  return compat;
}

OfonoCompat::~OfonoCompat() {
  if (!state_ || !state_->owns_name) return;
  int r = sd_bus_release_name_async(state_->bus.get(), nullptr, kOfonoBusName, nullptr, nullptr);
  if (r < 0) log::debug(std::string("Failed to release the bus name org.ofono: ") + errno_text(r) + ", ignoring.");
}

void OfonoCompat::active_profile_changed() noexcept {
  try {
    State& s = *state_;
    std::optional<std::string> now;
    if (auto active = active_profile_info(s.profiles.catalog())) now = active->id;
    if (now == s.announced) return;
    if (s.announced)
      log_emit_failure(sd_bus_emit_signal(s.bus.get(), kOfonoManagerPath, kOfonoManagerInterface, "ModemRemoved", "o",
                                          kOfonoModemPath),
                       "ModemRemoved");
    s.announced = now;
    if (now) log_emit_failure(emit_modem_added(s.bus.get()), "ModemAdded");
  } catch (...) {
    log_handler_failure("the change of the active profile for oFono clients");
  }
}

}  // namespace mcimd::api
