#include "dbus-api/profile_dbus.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "dbus-api/bus_reply.hpp"
#include "dbus-api/names.hpp"

namespace mcimd::api {

ProfileObject* ProfileObjects::look_up(uint32_t index) {
  auto info = catalog_.find_profile(index);
  if (!info) {
    forget(index);
    return nullptr;
  }
  ProfileObject& object = objects_[index];
  object.aka = &aka_;
  object.info = std::move(*info);
  return &object;
}

std::optional<ProfileInfo> active_profile_info(const ProfileCatalog& catalog) {
  const std::string active = catalog.active_profile();
  if (active.empty()) return std::nullopt;
  for (auto& profile : catalog.list_profiles())
    if (profile.id == active) return profile;
  return std::nullopt;
}

namespace {

// TS 33.102 6.3.3 / TS 35.206: RAND and AUTN are 128 bits each.
constexpr std::size_t kRandSize = 16;
constexpr std::size_t kAutnSize = 16;
// TS 33.102 6.8.1.2 / oFono's GsmAuthenticate: a 2G run uses two or three RANDs; one is allowed
// for callers that only need a single triplet.
constexpr std::size_t kMaxGsmRands = 3;

ProfileObjects& objects_of(void* userdata) { return *static_cast<ProfileObjects*>(userdata); }
// The object profile_object_find() handed back for this call.
const ProfileObject& object_of(void* found) { return *static_cast<const ProfileObject*>(found); }

// ---- org.mcimd.Tre1.Profile ----

// Every Profile property is one string field of the ProfileInfo the look-up found.
template <std::string ProfileInfo::*Field>
int property_get_field(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply, void* found,
                       sd_bus_error* ret_error) {
  return guarded(ret_error, property, [&]() -> int {
    return sd_bus_message_append(reply, "s", (object_of(found).info.*Field).c_str());
  });
}

constexpr sd_bus_property_get_t property_get_iccid = property_get_field<&ProfileInfo::iccid>;
constexpr sd_bus_property_get_t property_get_imsi = property_get_field<&ProfileInfo::imsi>;
constexpr sd_bus_property_get_t property_get_operator_id = property_get_field<&ProfileInfo::operator_id>;
int property_get_state(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply, void* found,
                       sd_bus_error* ret_error) {
  return guarded(ret_error, property, [&]() -> int {
    return sd_bus_message_append(reply, "s", std::string(to_string(object_of(found).info.state)).c_str());
  });
}

int property_get_class(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply, void* found,
                       sd_bus_error* ret_error) {
  return guarded(ret_error, property, [&]() -> int {
    return sd_bus_message_append(reply, "s", std::string(to_string(object_of(found).info.profile_class)).c_str());
  });
}

// ---- org.mcimd.Tre1.USimApplication ----

// Byte-array dictionary entries of a{say}.
using SecretEntry = std::pair<const char*, std::span<const uint8_t>>;

int append_say_dict(sd_bus_message* reply, std::span<const SecretEntry> entries) {
  int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "{say}");
  if (r < 0) return r;
  for (const auto& [key, value] : entries) {
    r = sd_bus_message_open_container(reply, SD_BUS_TYPE_DICT_ENTRY, "say");
    if (r < 0) return r;
    r = sd_bus_message_append(reply, "s", key);
    if (r < 0) return r;
    r = sd_bus_message_append_array(reply, 'y', value.data(), value.size());
    if (r < 0) return r;
    r = sd_bus_message_close_container(reply);
    if (r < 0) return r;
  }
  return sd_bus_message_close_container(reply);
}

void reply_umts(PendingCall& pending, Result<UmtsAuthResult> result) {
  if (!result) return pending.fail(result.error());
  const UmtsAuthResult& auth = *result;
  std::vector<SecretEntry> entries;
  if (auth.auts) {
    // TS 33.102 6.3.5: on a synchronisation failure only AUTS goes back.
    entries.emplace_back("AUTS", std::span<const uint8_t>(*auth.auts));
  } else if (auth.res && auth.ck && auth.ik) {
    entries.emplace_back("RES", std::span<const uint8_t>(*auth.res));
    entries.emplace_back("CK", std::span<const uint8_t>(*auth.ck));
    entries.emplace_back("IK", std::span<const uint8_t>(*auth.ik));
  } else {
    return pending.fail(Error{Code::Internal, "The service returned neither RES/CK/IK nor AUTS", std::nullopt});
  }
  pending.succeed([&](sd_bus_message* reply) { return append_say_dict(reply, entries); }, /*secret=*/true);
  // `result` (SecureBytes) wipes our own copies when it goes out of scope here.
}

void reply_gsm(PendingCall& pending, Result<std::vector<GsmAuthResult>> result) {
  if (!result) return pending.fail(result.error());
  pending.succeed(
      [&](sd_bus_message* reply) {
        int r = sd_bus_message_open_container(reply, SD_BUS_TYPE_ARRAY, "a{say}");
        if (r < 0) return r;
        for (const GsmAuthResult& triplet : *result) {
          const SecretEntry entries[] = {{"SRES", std::span<const uint8_t>(triplet.sres)},
                                         {"Kc", std::span<const uint8_t>(triplet.kc)}};
          r = append_say_dict(reply, entries);
          if (r < 0) return r;
        }
        return sd_bus_message_close_container(reply);
      },
      /*secret=*/true);
}

// Checks: one to kMaxGsmRands RANDs of kRandSize bytes each.
Result<std::vector<Bytes>> read_gsm_rands(sd_bus_message* m) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "ay");
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read the RAND list: " + errno_text(r));
  std::vector<Bytes> rands;
  for (;;) {
    const void* data = nullptr;
    size_t size = 0;
    r = sd_bus_message_read_array(m, 'y', &data, &size);
    if (r < 0) return fail(Code::InvalidArgument, "Cannot read the RAND list: " + errno_text(r));
    if (r == 0) break;
    if (rands.size() == kMaxGsmRands)
      return fail(Code::InvalidArgument, "At most " + std::to_string(kMaxGsmRands) + " RANDs are accepted");
    if (size != kRandSize)
      return fail(Code::InvalidArgument, "RAND " + std::to_string(rands.size()) + " must be " +
                                             std::to_string(kRandSize) + " bytes, got " + std::to_string(size));
    rands.push_back(to_bytes(data, size));
  }
  r = sd_bus_message_exit_container(m);
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read the RAND list: " + errno_text(r));
  if (rands.empty()) return fail(Code::InvalidArgument, "At least one RAND is needed");
  return rands;
}

// UmtsAuthenticate and ImsAuthenticate take the same arguments and answer alike.
// Checks: RAND and AUTN are kRandSize and kAutnSize bytes.
using UmtsLikeCall = void (AkaService::*)(const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply);

int umts_like(sd_bus_message* m, void* found, sd_bus_error* ret_error, std::string_view what, UmtsLikeCall call) {
  return guarded(ret_error, what, [&]() -> int {
    // A copy: the Service may announce changes that refresh or drop the looked-up object.
    ProfileObject profile = object_of(found);
    auto rand = read_fixed_bytes(m, "RAND", kRandSize);
    if (!rand) return set_error(ret_error, rand.error());
    auto autn = read_fixed_bytes(m, "AUTN", kAutnSize);
    if (!autn) return set_error(ret_error, autn.error());
    return dispatch(m, std::string(what), [&](const Pending& pending) {
      (profile.aka->*call)(profile.info.id, std::move(*rand), std::move(*autn),
                               replying<UmtsAuthResult>(pending, reply_umts));
    });
  });
}

}  // namespace

int method_umts_authenticate(sd_bus_message* m, void* found, sd_bus_error* ret_error) {
  return umts_like(m, found, ret_error, "UmtsAuthenticate", &Service::umts_authenticate);
}

int method_gsm_authenticate(sd_bus_message* m, void* found, sd_bus_error* ret_error) {
  return guarded(ret_error, "GsmAuthenticate", [&]() -> int {
    // A copy: the Service may announce changes that refresh or drop the looked-up object.
    ProfileObject profile = object_of(found);
    auto rands = read_gsm_rands(m);
    if (!rands) return set_error(ret_error, rands.error());
    std::size_t count = rands->size();
    return dispatch(m, "GsmAuthenticate", [&](const Pending& pending) {
      auto answer = [count](PendingCall& call, Result<std::vector<GsmAuthResult>> result) {
        if (result && result->size() != count)
          return call.fail(Error{Code::Internal,
                                 "The service answered " + std::to_string(result->size()) + " triplets for " +
                                     std::to_string(count) + " RANDs",
                                 std::nullopt});
        reply_gsm(call, std::move(result));
      };
      profile.aka->gsm_authenticate(profile.info.id, std::move(*rands),
                                        replying<std::vector<GsmAuthResult>>(pending, std::move(answer)));
    });
  });
}

namespace {

int method_ims_authenticate(sd_bus_message* m, void* found, sd_bus_error* ret_error) {
  return umts_like(m, found, ret_error, "ImsAuthenticate", &Service::ims_authenticate);
}

constexpr MemberAccess kUsimMembers[] = {
    {"UmtsAuthenticate", Access::Authenticate},
    {"GsmAuthenticate", Access::Authenticate},
    {"ImsAuthenticate", Access::Authenticate},
};

}  // namespace

// ---- vtables (kept in sync with org.mcimd.Tre1.xml; a test compares them) ----

const sd_bus_vtable profile_vtable[] = {
    SD_BUS_VTABLE_START(0),
    // A profile keeps its identity for the life of its object; only State changes.
    SD_BUS_PROPERTY("Iccid", "s", property_get_iccid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Imsi", "s", property_get_imsi, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("OperatorId", "s", property_get_operator_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Class", "s", property_get_class, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_VTABLE_END,
};
// No methods: the properties are read through org.freedesktop.DBus.Properties.
constinit const InterfaceAccess profile_access{kProfileInterface, {}};

// oFono's org.ofono.USimApplication wire signatures.
const sd_bus_vtable usim_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("UmtsAuthenticate", SD_BUS_ARGS("ay", rand, "ay", autn), SD_BUS_RESULT("a{say}", result),
                            method_umts_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GsmAuthenticate", SD_BUS_ARGS("aay", rands), SD_BUS_RESULT("aa{say}", results),
                            method_gsm_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ImsAuthenticate", SD_BUS_ARGS("ay", rand, "ay", autn), SD_BUS_RESULT("a{say}", result),
                            method_ims_authenticate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};
// The modem role authenticates; nothing else on this interface is open to it.
constinit const InterfaceAccess usim_access{kUsimInterface, kUsimMembers};

int profile_object_find(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error* ret_error) {
  return guarded(ret_error, "profile lookup", [&]() -> int {
    auto index = parse_profile_path(path);
    if (!index) return 0;
    ProfileObject* object = objects_of(userdata).look_up(*index);
    if (!object) return set_error(ret_error, Error{Code::NotFound, std::string("No profile at ") + path, std::nullopt});
    *found = object;
    return 1;
  });
}

int profile_node_enumerator(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error* ret_error) {
  return guarded(ret_error, "profile enumeration", [&]() -> int {
    auto profiles = objects_of(userdata).catalog().list_profiles();
    // sd-bus frees the list with free(), so it is built with malloc()/strdup().
    auto** list = static_cast<char**>(std::calloc(profiles.size() + 1, sizeof(char*)));
    if (!list) return -ENOMEM;
    for (std::size_t i = 0; i < profiles.size(); ++i) {
      list[i] = strdup(profile_path(profiles[i].index).c_str());
      if (!list[i]) {
        for (std::size_t j = 0; j < i; ++j) std::free(list[j]);
        std::free(list);
        return -ENOMEM;
      }
    }
    *nodes = list;
    return 0;
  });
}

}  // namespace mcimd::api
