#pragma once
// Caller authorisation, kept free of sd-bus so that it is tested without a bus: who the caller
// is (Caller), which role that makes them (Role), what a call needs (Access), and the verdict.
#include <sys/types.h>

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::api {

// What a call needs, from least to most.
enum class Access {
  Read,          // properties, ListProfiles, GetManagedObjects, Introspect, Peer
  Authenticate,  // USimApplication methods
  Attest,        // Attestation methods: EK, AK and quotes are the operator's business
  Provision,     // RequestPackage, InstallPackage: the provisioning agent's calls
  Manage,        // install/enable/disable/delete, property writes, anything unknown
};

// What one method needs. Properties are read through org.freedesktop.DBus.Properties, so they
// are governed by that interface's entries, not by entries of their own.
struct MemberAccess {
  std::string_view member;
  Access access;
};

// The methods of one interface and what each needs; a method not listed needs Manage.
struct InterfaceAccess {
  std::string_view interface;
  std::span<const MemberAccess> members;
};

enum class Role {
  None,   // may do nothing
  Modem,  // Read + Authenticate
  Agent,  // Read + Attest + Provision: the provisioning agent (enrolment, validation, packages)
  Admin,  // everything
};

// The credentials an authorisation decision may rely on.
struct Caller {
  std::optional<uid_t> euid;  // unknown → treated as nobody
  std::optional<gid_t> egid;
  std::vector<gid_t> supplementary_gids;
};

// The sender's credentials as sd-bus reports them, each marked with whether sd-bus read it from
// /proc/<pid> (SD_BUS_CREDS_AUGMENT) rather than getting it from the bus. dbus-daemon vouches
// for the euid only (UnixUserID, taken with SO_PEERCRED when the sender connected); real uid,
// egid and groups come from /proc, read after the call arrived.
struct ReportedCreds {
  std::optional<uid_t> euid;
  bool euid_from_proc = false;
  std::optional<uid_t> ruid;
  bool ruid_from_proc = false;
  std::optional<gid_t> egid;
  bool egid_from_proc = false;
  std::optional<std::vector<gid_t>> supplementary_gids;
  bool gids_from_proc = false;
};

// What of ReportedCreds a decision may use. /proc/<pid> may by then describe another program:
// the sender may have exec'd a set-uid/set-gid binary, or exited and had its pid reused.
//  - euid only when the bus vouches for it (never from /proc: a set-uid exec changes it);
//  - egid only when the bus vouches for it (a set-gid exec changes it);
//  - groups from the bus always; from /proc only when the real uid there equals the bus's
//    euid, which an exec cannot change and a reused pid of another user does not match.
Caller trusted_caller(const ReportedCreds& creds);

// Admin when euid is 0 or in admin_uids, or egid/a supplementary gid is in admin_gids;
// otherwise Agent when euid is in agent_uids or a gid in agent_gids; otherwise Modem when euid is
// in modem_uids or a gid in modem_gids; otherwise None. A caller whose euid is unknown is None
// whatever its groups.
Role role_of(const Caller& caller, const AccessPolicy& policy);
// Every role the caller holds (a caller may be both modem and agent), Admin alone when admin.
std::vector<Role> roles_of(const Caller& caller, const AccessPolicy& policy);

bool role_permits(Role role, Access access);

// OK when one of the caller's roles permits `access`; NotAuthorized naming the caller and the call
// (`what`, e.g. "org.mcimd.Tre1.Manager.DeleteProfile") otherwise.
[[nodiscard]] Status authorize(const Caller& caller, const AccessPolicy& policy, Access access, std::string_view what);

}  // namespace mcimd::api
