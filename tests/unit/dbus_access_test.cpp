// Caller authorisation, object paths and error names of the D-Bus API, without a bus.
#include <gtest/gtest.h>
#include <systemd/sd-bus.h>

#include <cerrno>
#include <set>
#include <string>

#include "dbus-api/access.hpp"
#include "dbus-api/attestation_dbus.hpp"
#include "dbus-api/bus_filter.hpp"
#include "dbus-api/manager_dbus.hpp"
#include "dbus-api/names.hpp"
#include "dbus-api/profile_dbus.hpp"

namespace mcimd::api {
namespace {

constexpr uid_t kModemUid = 1001, kAdminUid = 1002, kStrangerUid = 65534;
constexpr gid_t kModemGid = 2001, kAdminGid = 2002, kOtherGid = 2003;

AccessPolicy policy() {
  AccessPolicy p;
  p.modem_uids = {kModemUid};
  p.modem_gids = {kModemGid};
  p.admin_uids = {kAdminUid};
  p.admin_gids = {kAdminGid};
  return p;
}

Caller caller(std::optional<uid_t> uid, std::optional<gid_t> egid = std::nullopt, std::vector<gid_t> groups = {}) {
  return Caller{uid, egid, std::move(groups)};
}

TEST(ARoleDecision, MakesRootAnAdminEvenWithAnEmptyPolicy) {
  EXPECT_EQ(role_of(caller(0), AccessPolicy{}), Role::Admin);
}

TEST(ARoleDecision, GrantsAdminByUidByEffectiveGidAndBySupplementaryGid) {
  EXPECT_EQ(role_of(caller(kAdminUid), policy()), Role::Admin);
  EXPECT_EQ(role_of(caller(kStrangerUid, kAdminGid), policy()), Role::Admin);
  EXPECT_EQ(role_of(caller(kStrangerUid, kOtherGid, {kOtherGid, kAdminGid}), policy()), Role::Admin);
}

TEST(ARoleDecision, GrantsModemByUidByEffectiveGidAndBySupplementaryGid) {
  EXPECT_EQ(role_of(caller(kModemUid), policy()), Role::Modem);
  EXPECT_EQ(role_of(caller(kStrangerUid, kModemGid), policy()), Role::Modem);
  EXPECT_EQ(role_of(caller(kStrangerUid, kOtherGid, {kModemGid}), policy()), Role::Modem);
}

TEST(ARoleDecision, PrefersAdminWhenACallerHasBothRoles) {
  EXPECT_EQ(role_of(caller(kModemUid, kOtherGid, {kAdminGid}), policy()), Role::Admin);
}

TEST(ARoleDecision, GivesNoRoleToStrangersOrToCallersOfUnknownUid) {
  EXPECT_EQ(role_of(caller(kStrangerUid, kOtherGid, {kOtherGid}), policy()), Role::None);
  EXPECT_EQ(role_of(caller(std::nullopt, kAdminGid, {kAdminGid}), policy()), Role::None);
}

TEST(TheTrustedCaller, TakesTheEuidOnlyFromTheBus) {
  ReportedCreds bus;
  bus.euid = 1000;
  EXPECT_EQ(trusted_caller(bus).euid, 1000u);

  // A set-uid exec after sending changes the euid /proc shows.
  ReportedCreds proc;
  proc.euid = 0;
  proc.euid_from_proc = true;
  EXPECT_FALSE(trusted_caller(proc).euid);
  EXPECT_EQ(role_of(trusted_caller(proc), AccessPolicy{}), Role::None);
}

TEST(TheTrustedCaller, IgnoresAnEffectiveGidReadFromProc) {
  ReportedCreds creds;
  creds.euid = 1000;
  creds.egid = kAdminGid;
  creds.egid_from_proc = true;  // a set-gid exec changes it
  EXPECT_FALSE(trusted_caller(creds).egid);
  EXPECT_EQ(role_of(trusted_caller(creds), policy()), Role::None);
  creds.egid_from_proc = false;
  EXPECT_EQ(role_of(trusted_caller(creds), policy()), Role::Admin);
}

TEST(TheTrustedCaller, TakesGroupsFromProcOnlyWhileTheRealUidStillMatches) {
  ReportedCreds creds;
  creds.euid = 1000;
  creds.ruid = 1000;
  creds.ruid_from_proc = true;
  creds.supplementary_gids = std::vector<gid_t>{kModemGid};
  creds.gids_from_proc = true;
  EXPECT_EQ(role_of(trusted_caller(creds), policy()), Role::Modem);

  creds.ruid = 1001;  // the pid now belongs to another user's process
  EXPECT_TRUE(trusted_caller(creds).supplementary_gids.empty());
  creds.ruid.reset();
  EXPECT_TRUE(trusted_caller(creds).supplementary_gids.empty());

  creds.gids_from_proc = false;  // a bus that reports groups itself is believed
  EXPECT_EQ(role_of(trusted_caller(creds), policy()), Role::Modem);
}

TEST(ARole, PermitsExactlyWhatItsTableSays) {
  struct Row {
    Role role;
    Access access;
    bool permitted;
  };
  const Row rows[] = {
      {Role::None, Access::Read, false},         {Role::None, Access::Authenticate, false},
      {Role::None, Access::Attest, false},       {Role::None, Access::Manage, false},
      {Role::Modem, Access::Read, true},         {Role::Modem, Access::Authenticate, true},
      {Role::Modem, Access::Attest, false},      {Role::Modem, Access::Manage, false},
      {Role::Admin, Access::Read, true},         {Role::Admin, Access::Authenticate, true},
      {Role::Admin, Access::Attest, true},       {Role::Admin, Access::Manage, true},
  };
  for (const auto& row : rows)
    EXPECT_EQ(role_permits(row.role, row.access), row.permitted)
        << static_cast<int>(row.role) << " " << static_cast<int>(row.access);
}

TEST(TheRequiredAccess, FollowsTheApiAndDeniesByDefault) {
  struct Row {
    const char* interface;
    const char* member;
    Access access;
  };
  const Row rows[] = {
      {"org.mcimd.Tre1.USimApplication", "UmtsAuthenticate", Access::Authenticate},
      {"org.mcimd.Tre1.USimApplication", "GsmAuthenticate", Access::Authenticate},
      {"org.mcimd.Tre1.USimApplication", "ImsAuthenticate", Access::Authenticate},
      {"org.mcimd.Tre1.USimApplication", "Other", Access::Manage},
      {"org.mcimd.Tre1.Manager", "ListProfiles", Access::Read},
      {"org.mcimd.Tre1.Manager", "InstallProfile", Access::Manage},
      {"org.mcimd.Tre1.Manager", "EnableProfile", Access::Manage},
      {"org.mcimd.Tre1.Manager", "DisableProfile", Access::Manage},
      {"org.mcimd.Tre1.Manager", "DeleteProfile", Access::Manage},
      {"org.mcimd.Tre1.Profile", "Anything", Access::Manage},
      {"org.mcimd.Tre1.Attestation", "GetEndorsement", Access::Attest},
      {"org.mcimd.Tre1.Attestation", "ActivateCredential", Access::Attest},
      {"org.mcimd.Tre1.Attestation", "GetEvidence", Access::Attest},
      {"org.mcimd.Tre1.Attestation", "ValidatePlatform", Access::Attest},
      {"org.mcimd.Tre1.Attestation", "Other", Access::Manage},
      {"", "GetEvidence", Access::Manage},
      {"org.freedesktop.DBus.Properties", "Get", Access::Read},
      {"org.freedesktop.DBus.Properties", "GetAll", Access::Read},
      {"org.freedesktop.DBus.Properties", "Set", Access::Manage},
      {"org.freedesktop.DBus.ObjectManager", "GetManagedObjects", Access::Read},
      {"org.freedesktop.DBus.Introspectable", "Introspect", Access::Read},
      {"org.freedesktop.DBus.Peer", "Ping", Access::Read},
      {"org.freedesktop.DBus.Peer", "GetMachineId", Access::Read},
      {"", "UmtsAuthenticate", Access::Manage},
      {"org.example.Unknown", "Get", Access::Manage},
  };
  for (const auto& row : rows)
    EXPECT_EQ(required_access(row.interface, row.member), row.access) << row.interface << "." << row.member;
}

std::set<std::string> methods_of(const sd_bus_vtable* vtable) {
  std::set<std::string> methods;
  for (const sd_bus_vtable* entry = vtable; entry->type != _SD_BUS_VTABLE_END; ++entry)
    if (entry->type == _SD_BUS_VTABLE_METHOD) methods.insert(entry->x.method.member);
  return methods;
}

TEST(EveryVtable, HasAnAccessEntryForEachMethodAndForNothingElse) {
  struct Row {
    const sd_bus_vtable* vtable;
    const InterfaceAccess& access;
  };
  const Row rows[] = {
      {manager_vtable, manager_access},
      {attestation_vtable, attestation_access},
      {profile_vtable, profile_access},
      {usim_vtable, usim_access},
  };
  for (const auto& row : rows) {
    std::set<std::string> listed;
    for (const MemberAccess& entry : row.access.members) {
      listed.insert(std::string(entry.member));
      // And the filter consults this very table.
      EXPECT_EQ(listed_access(row.access.interface, entry.member), entry.access) << row.access.interface;
    }
    EXPECT_EQ(listed, methods_of(row.vtable)) << row.access.interface;
  }
}

TEST(TheAuthorisation, RefusesWithNotAuthorizedNamingTheCallerAndTheCall) {
  auto verdict = authorize(caller(kStrangerUid), policy(), Access::Read, "org.mcimd.Tre1.Manager.ListProfiles");
  ASSERT_FALSE(verdict);
  EXPECT_EQ(verdict.error().code, Code::NotAuthorized);
  EXPECT_NE(verdict.error().message.find("uid 65534"), std::string::npos);
  EXPECT_NE(verdict.error().message.find("org.mcimd.Tre1.Manager.ListProfiles"), std::string::npos);

  auto modem_manages = authorize(caller(kModemUid), policy(), Access::Manage, "DeleteProfile");
  ASSERT_FALSE(modem_manages);
  EXPECT_NE(modem_manages.error().message.find("manage"), std::string::npos);

  auto modem_attests = authorize(caller(kModemUid), policy(), Access::Attest, "GetEvidence");
  ASSERT_FALSE(modem_attests);
  EXPECT_NE(modem_attests.error().message.find("may not use platform attestation (GetEvidence)"), std::string::npos)
      << modem_attests.error().message;
  EXPECT_TRUE(authorize(caller(kAdminUid), policy(), Access::Attest, "GetEvidence"));
  EXPECT_TRUE(authorize(caller(kStrangerUid, kOtherGid, {kAdminGid}), policy(), Access::Attest, "GetEvidence"));

  EXPECT_TRUE(authorize(caller(kModemUid), policy(), Access::Authenticate, "UmtsAuthenticate"));
  EXPECT_TRUE(authorize(caller(0), AccessPolicy{}, Access::Manage, "DeleteProfile"));
}

TEST(AProfilePath, RoundTripsItsIndex) {
  EXPECT_EQ(profile_path(0), "/org/mcimd/Tre1/Profile/0");
  EXPECT_EQ(profile_path(4294967295u), "/org/mcimd/Tre1/Profile/4294967295");
  for (uint32_t index : {0u, 1u, 7u, 42u, 4294967295u}) EXPECT_EQ(parse_profile_path(profile_path(index)), index);
}

TEST(AProfilePath, RejectsEverythingButOneCanonicalIndex) {
  for (const char* bad :
       {"", "/", "/org/mcimd/Tre1", "/org/mcimd/Tre1/Profile", "/org/mcimd/Tre1/Profile/", "/org/mcimd/Tre1/Profile/01",
        "/org/mcimd/Tre1/Profile/-1", "/org/mcimd/Tre1/Profile/+1", "/org/mcimd/Tre1/Profile/1/x",
        "/org/mcimd/Tre1/Profile/1a", "/org/mcimd/Tre1/Profile/4294967296", "/org/mcimd/Tre1/Profiles/1",
        "/org/mcimd/Tre1/Profile1"})
    EXPECT_FALSE(parse_profile_path(bad)) << bad;
}

constexpr Code kAllCodes[] = {
    Code::InvalidArgument,      Code::NotAuthorized, Code::NotFound,    Code::AlreadyExists,
    Code::InvalidState,         Code::MacFailure,    Code::SyncFailure, Code::AmfFailure,
    Code::PlatformStateChanged, Code::TpmFailure,    Code::TpmMismatch, Code::RollbackDetected,
    Code::StoreCorrupt,         Code::ConfigError,   Code::IoError,     Code::Busy,
    Code::Unsupported,          Code::Internal,
};

TEST(AnErrorName, IsFixedPerCodeAndMapsBack) {
  EXPECT_EQ(error_name(Code::MacFailure), "org.mcimd.Tre1.Error.MacFailure");
  EXPECT_EQ(error_name(Code::NotAuthorized), "org.mcimd.Tre1.Error.NotAuthorized");
  for (Code code : kAllCodes) EXPECT_EQ(code_from_error_name(error_name(code)), code) << error_name(code);
  EXPECT_FALSE(code_from_error_name("org.freedesktop.DBus.Error.AccessDenied"));
  EXPECT_FALSE(code_from_error_name("org.mcimd.Tre1.Error.NoSuchThing"));
}

TEST(AnErrorName, IsRegisteredWithSdBusForEveryCode) {
  register_error_map();
  register_error_map();  // idempotent
  for (Code code : kAllCodes) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int r = sd_bus_error_set(&e, error_name(code).c_str(), "message");
    // An unknown name would map to EIO; only TpmFailure and IoError are EIO on purpose.
    if (code != Code::TpmFailure && code != Code::IoError) {
      EXPECT_NE(r, -EIO) << error_name(code);
    }
    EXPECT_LT(r, 0);
    sd_bus_error_free(&e);
  }
  sd_bus_error e = SD_BUS_ERROR_NULL;
  EXPECT_EQ(sd_bus_error_set(&e, error_name(Code::NotFound).c_str(), "x"), -ENOENT);
  sd_bus_error_free(&e);
  EXPECT_EQ(sd_bus_error_set(&e, error_name(Code::NotAuthorized).c_str(), "x"), -EACCES);
  sd_bus_error_free(&e);
}

TEST(TheAgentRole, AttestsAndProvisionsButNeitherAuthenticatesNorManages) {
  constexpr uid_t kAgentUid = 1004;
  constexpr gid_t kAgentGid = 2004;
  AccessPolicy p = policy();
  p.agent_uids = {kAgentUid};
  p.agent_gids = {kAgentGid};
  EXPECT_EQ(role_of(caller(kAgentUid), p), Role::Agent);
  EXPECT_EQ(role_of(caller(kStrangerUid, kAgentGid), p), Role::Agent);
  for (Access a : {Access::Read, Access::Attest, Access::Provision})
    EXPECT_TRUE(authorize(caller(kAgentUid), p, a, "x")) << static_cast<int>(a);
  for (Access a : {Access::Authenticate, Access::Manage}) {
    auto r = authorize(caller(kAgentUid), p, a, "x");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::NotAuthorized);
  }
  auto modem = authorize(caller(kModemUid), p, Access::Provision, "org.mcimd.Tre1.Manager.InstallPackage");
  ASSERT_FALSE(modem);
  EXPECT_NE(modem.error().message.find("may not provision profiles"), std::string::npos) << modem.error().message;
  // A caller in both the agent and the modem group holds both roles.
  const Caller both = caller(kStrangerUid, kAgentGid, {kAgentGid, kModemGid});
  EXPECT_EQ(roles_of(both, p), (std::vector<Role>{Role::Agent, Role::Modem}));
  EXPECT_TRUE(authorize(both, p, Access::Authenticate, "x"));
  EXPECT_TRUE(authorize(both, p, Access::Provision, "x"));
  EXPECT_FALSE(authorize(both, p, Access::Manage, "x"));
}

}  // namespace
}  // namespace mcimd::api
