#include "dbus-api/bus_filter.hpp"

#include <string>
#include <vector>

#include "common/log.hpp"
#include "dbus-api/attestation_dbus.hpp"
#include "dbus-api/bus_reply.hpp"
#include "dbus-api/manager_dbus.hpp"
#include "dbus-api/names.hpp"
#include "dbus-api/ofono_compat.hpp"
#include "dbus-api/profile_dbus.hpp"

namespace mcimd::api {

namespace {

// Reading is open to the modem role: properties, the object tree, introspection and Peer.
// Properties.Set and anything else on these interfaces need Manage.
constexpr MemberAccess kPropertiesMembers[] = {{"Get", Access::Read}, {"GetAll", Access::Read}};
constexpr MemberAccess kObjectManagerMembers[] = {{"GetManagedObjects", Access::Read}};
constexpr MemberAccess kIntrospectableMembers[] = {{"Introspect", Access::Read}};
constexpr MemberAccess kPeerMembers[] = {{"Ping", Access::Read}, {"GetMachineId", Access::Read}};

constexpr InterfaceAccess kStandardAccess[] = {
    {"org.freedesktop.DBus.Properties", kPropertiesMembers},
    {"org.freedesktop.DBus.ObjectManager", kObjectManagerMembers},
    {"org.freedesktop.DBus.Introspectable", kIntrospectableMembers},
    {"org.freedesktop.DBus.Peer", kPeerMembers},
};

// Every table the filter knows: ours, each beside its vtable, and the standard interfaces'.
const InterfaceAccess* const kInterfaces[] = {
    &manager_access,     &attestation_access, &profile_access,     &usim_access,
    &kStandardAccess[0], &kStandardAccess[1], &kStandardAccess[2], &kStandardAccess[3],
    // The oFono-shaped objects (ofono_compat.hpp), on the paths their own filter covers.
    &ofono_manager_access, &ofono_modem_access, &ofono_sim_manager_access, &ofono_sim_authentication_access,
    &ofono_usim_access,
};

std::string call_name(sd_bus_message* m) {
  const char* interface = sd_bus_message_get_interface(m);
  const char* member = sd_bus_message_get_member(m);
  return std::string(interface ? interface : "(no interface)") + "." + (member ? member : "(no member)");
}

bool in_our_tree(std::string_view path) {
  std::string_view root = kRootPath;
  return path == root || (path.starts_with(root) && path.size() > root.size() && path[root.size()] == '/');
}

// The caller's groups as the bus daemon read them from its socket when it connected
// (SO_PEERGROUPS), from GetConnectionCredentials' UnixGroupIDs (dbus-daemon 1.14). sd-bus does not
// ask for them and reads /proc/<pid>/status instead, which a hardened unit does not see
// (ProtectProc=invisible hides other users' processes): without this, group roles would fail
// there. nullopt when the bus does not say (a peer-to-peer connection, an older bus).
std::optional<std::vector<gid_t>> bus_reported_groups(sd_bus_message* m) {
  sd_bus* bus = sd_bus_message_get_bus(m);
  const char* sender = sd_bus_message_get_sender(m);
  if (!bus || !sender) return std::nullopt;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                             "GetConnectionCredentials", &error, &raw, "s", sender);
  sd_bus_error_free(&error);
  if (r < 0) return std::nullopt;
  SdBusMessage reply(raw);
  if (sd_bus_message_enter_container(reply.get(), 'a', "{sv}") < 0) return std::nullopt;
  std::optional<std::vector<gid_t>> groups;
  while ((r = sd_bus_message_enter_container(reply.get(), 'e', "sv")) > 0) {
    const char* key = nullptr;
    if (sd_bus_message_read(reply.get(), "s", &key) < 0) return std::nullopt;
    if (std::string_view(key) == "UnixGroupIDs") {
      if (sd_bus_message_enter_container(reply.get(), 'v', "au") < 0) return std::nullopt;
      const void* data = nullptr;
      size_t size = 0;
      if (sd_bus_message_read_array(reply.get(), 'u', &data, &size) < 0) return std::nullopt;
      const auto* ids = static_cast<const uint32_t*>(data);
      groups.emplace(ids, ids + size / sizeof(uint32_t));
      if (sd_bus_message_exit_container(reply.get()) < 0) return std::nullopt;
    } else if (sd_bus_message_skip(reply.get(), "v") < 0) {
      return std::nullopt;
    }
    if (sd_bus_message_exit_container(reply.get()) < 0) return std::nullopt;
  }
  if (r < 0) return std::nullopt;
  return groups;
}

}  // namespace

std::optional<Access> listed_access(std::string_view interface, std::string_view member) {
  for (const InterfaceAccess* table : kInterfaces) {
    if (table->interface != interface) continue;
    for (const MemberAccess& entry : table->members)
      if (entry.member == member) return entry.access;
  }
  return std::nullopt;
}

Access required_access(std::string_view interface, std::string_view member) {
  return listed_access(interface, member).value_or(Access::Manage);
}

Result<Caller> query_caller(sd_bus_message* m) {
  sd_bus_creds* raw = nullptr;
  int r = sd_bus_query_sender_creds(
      m,
      SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT,
      &raw);
  if (r < 0) return fail(Code::NotAuthorized, "Cannot determine the caller's credentials: " + errno_text(r));
  SdBusCreds creds(raw);
  uint64_t from_proc = sd_bus_creds_get_augmented_mask(creds.get());
  ReportedCreds reported;
  uid_t uid = 0;
  if (sd_bus_creds_get_euid(creds.get(), &uid) >= 0) reported.euid = uid;
  reported.euid_from_proc = from_proc & SD_BUS_CREDS_EUID;
  if (sd_bus_creds_get_uid(creds.get(), &uid) >= 0) reported.ruid = uid;
  reported.ruid_from_proc = from_proc & SD_BUS_CREDS_UID;
  gid_t egid = 0;
  if (sd_bus_creds_get_egid(creds.get(), &egid) >= 0) reported.egid = egid;
  reported.egid_from_proc = from_proc & SD_BUS_CREDS_EGID;
  const gid_t* gids = nullptr;
  int n = sd_bus_creds_get_supplementary_gids(creds.get(), &gids);
  if (n >= 0) reported.supplementary_gids.emplace(gids, gids + n);
  reported.gids_from_proc = from_proc & SD_BUS_CREDS_SUPPLEMENTARY_GIDS;
  // Only when /proc told nothing (the hardened unit): asking the bus costs a round trip per call.
  if (!reported.supplementary_gids) {
    if (auto from_bus = bus_reported_groups(m)) {
      reported.supplementary_gids = std::move(from_bus);
      reported.gids_from_proc = false;
    }
  }
  return trusted_caller(reported);
}

int authorize_call(sd_bus_message* m, const AccessPolicy& policy, sd_bus_error* ret_error) {
  return guarded(ret_error, "authorisation", [&]() -> int {
    const char* path = sd_bus_message_get_path(m);
    const char* interface = sd_bus_message_get_interface(m);
    const char* member = sd_bus_message_get_member(m);
    Access access = required_access(interface ? interface : "", member ? member : "");
    std::string what = call_name(m);
    auto caller = query_caller(m);
    Status verdict = caller ? authorize(*caller, policy, access, what) : Status(tl::unexpected(caller.error()));
    if (verdict) return 0;
    log::info("Refused " + what + " on " + (path ? path : "(no path)") + ": " + verdict.error().message);
    // A negative return with ret_error set makes sd-bus answer with our error and stop here.
    return set_error(ret_error, verdict.error());
  });
}

int filter_authorize(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  if (!sd_bus_message_is_method_call(m, nullptr, nullptr)) return 0;
  const char* path = sd_bus_message_get_path(m);
  if (!path || !in_our_tree(path)) return 0;
  return authorize_call(m, *static_cast<const AccessPolicy*>(userdata), ret_error);
}

}  // namespace mcimd::api
