#include "dbus-api/access.hpp"

#include <algorithm>
#include <string>

namespace mcimd::api {

namespace {

template <class T>
bool contains(const std::vector<T>& list, T value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool in_groups(const Caller& caller, const std::vector<gid_t>& gids) {
  if (caller.egid && contains(gids, *caller.egid)) return true;
  return std::any_of(caller.supplementary_gids.begin(), caller.supplementary_gids.end(),
                     [&](gid_t g) { return contains(gids, g); });
}

std::string_view access_noun(Access access) {
  switch (access) {
    case Access::Read:
      return "read mcimd state";
    case Access::Authenticate:
      return "authenticate with a profile";
    case Access::Attest:
      return "use platform attestation";
    case Access::Provision:
      return "provision profiles";
    case Access::Manage:
      return "manage profiles";
  }
  return "do this";
}

}  // namespace

Caller trusted_caller(const ReportedCreds& creds) {
  Caller caller;
  if (creds.euid && !creds.euid_from_proc) caller.euid = creds.euid;
  if (creds.egid && !creds.egid_from_proc) caller.egid = creds.egid;
  if (creds.supplementary_gids) {
    bool same_process = caller.euid && creds.ruid && *creds.ruid == *caller.euid;
    if (!creds.gids_from_proc || same_process) caller.supplementary_gids = *creds.supplementary_gids;
  }
  return caller;
}

Role role_of(const Caller& caller, const AccessPolicy& policy) {
  if (!caller.euid) return Role::None;
  uid_t uid = *caller.euid;
  if (uid == 0 || contains(policy.admin_uids, uid) || in_groups(caller, policy.admin_gids)) return Role::Admin;
  if (contains(policy.agent_uids, uid) || in_groups(caller, policy.agent_gids)) return Role::Agent;
  if (contains(policy.modem_uids, uid) || in_groups(caller, policy.modem_gids)) return Role::Modem;
  return Role::None;
}

std::vector<Role> roles_of(const Caller& caller, const AccessPolicy& policy) {
  const Role highest = role_of(caller, policy);
  if (highest == Role::Admin || highest == Role::None) return {highest};
  std::vector<Role> roles{highest};
  if (highest == Role::Agent && (contains(policy.modem_uids, *caller.euid) || in_groups(caller, policy.modem_gids)))
    roles.push_back(Role::Modem);
  return roles;
}

bool role_permits(Role role, Access access) {
  switch (role) {
    case Role::Admin:
      return true;
    case Role::Modem:
      return access == Access::Read || access == Access::Authenticate;
    case Role::Agent:
      return access == Access::Read || access == Access::Attest || access == Access::Provision;
    case Role::None:
      return false;
  }
  return false;
}

Status authorize(const Caller& caller, const AccessPolicy& policy, Access access, std::string_view what) {
  for (Role role : roles_of(caller, policy))
    if (role_permits(role, access)) return {};
  std::string who = caller.euid ? "uid " + std::to_string(*caller.euid) : std::string("a caller of unknown uid");
  return fail(Code::NotAuthorized,
              who + " may not " + std::string(access_noun(access)) + " (" + std::string(what) + ")");
}

}  // namespace mcimd::api
