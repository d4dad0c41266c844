#pragma once
// What the D-Bus adapter needs from the daemon. dbus-api depends on nothing else of mcimd's
// but common/. All calls happen on the event-loop thread; asynchronous calls invoke their
// reply callback later, on the event-loop thread too.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::api {

struct ProfileInfo {
  std::string id;           // store id
  uint32_t index = 0;       // object path /org/mcimd/Tre1/Profile/<index>
  std::string iccid;
  std::string imsi;
  std::string operator_id;
  std::string state;        // "enabled" | "disabled"
  std::string profile_class;  // "operational" | "bootstrap"
};

// oFono's a{say}: RES, CK, IK on success, or AUTS alone on a synchronisation failure.
struct UmtsAuthResult {
  std::optional<SecureBytes> res, ck, ik;
  std::optional<Bytes> auts;
};
struct GsmAuthResult {
  SecureBytes sres;  // 4 bytes
  SecureBytes kc;    // 8 bytes
};

template <class T>
using Reply = std::function<void(Result<T>)>;

class ServiceListener {
 public:
  virtual ~ServiceListener() = default;
  virtual void profile_added(const ProfileInfo& info) = 0;
  virtual void profile_changed(const ProfileInfo& info) = 0;
  virtual void profile_removed(const ProfileInfo& info) = 0;
  virtual void manager_changed() = 0;  // ActiveProfile / PlatformState
};

class Service {
 public:
  virtual ~Service() = default;
  virtual void set_listener(ServiceListener* listener) = 0;

  // Cached state: never touches the TPM.
  virtual std::vector<ProfileInfo> list_profiles() const = 0;
  virtual std::optional<ProfileInfo> find_profile(uint32_t index) const = 0;
  virtual std::string active_profile() const = 0;   // store id or ""
  virtual std::string platform_state() const = 0;   // "trusted" | "changed" | "unknown"

  // Factory installation from a YAML document (see mcim-store parse_factory_profile).
  virtual void install_profile(SecureString yaml, Reply<ProfileInfo> reply) = 0;
  virtual void enable_profile(const std::string& id, Reply<void> reply) = 0;
  virtual void disable_profile(const std::string& id, Reply<void> reply) = 0;
  virtual void delete_profile(const std::string& id, Reply<void> reply) = 0;

  virtual void umts_authenticate(const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) = 0;
  virtual void ims_authenticate(const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) = 0;
  virtual void gsm_authenticate(const std::string& id, std::vector<Bytes> rands,
                                Reply<std::vector<GsmAuthResult>> reply) = 0;
};

// Who may do what: the modem role authenticates and reads, the admin role also manages.
struct AccessPolicy {
  std::vector<uid_t> modem_uids;
  std::vector<gid_t> modem_gids;
  std::vector<uid_t> admin_uids;   // uid 0 is always admin
  std::vector<gid_t> admin_gids;
};

}  // namespace mcimd::api
