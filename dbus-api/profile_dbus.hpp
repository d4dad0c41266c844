#pragma once
// The profile objects, /org/mcimd/Tre1/Profile/<index>, each carrying two interfaces:
//   org.mcimd.Tre1.Profile         Iccid, Imsi, OperatorId, State, Class
//   org.mcimd.Tre1.USimApplication UmtsAuthenticate, GsmAuthenticate, ImsAuthenticate (oFono's
//                                  wire signatures)
// Both are registered as fallback vtables below kProfilePathPrefix with a ProfileObjects as
// userdata. profile_object_find() hands the getters and methods the ProfileObject it found, so
// none of them parses the object path again; profile_node_enumerator() lists the objects.
#include <systemd/sd-bus.h>

#include <cstdint>
#include <map>
#include <optional>

#include "dbus-api/access.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::api {

// One profile object: what answers its authentication calls and the profile as the catalog had
// it when sd-bus last looked the object up.
struct ProfileObject {
  AkaService* aka = nullptr;
  ProfileInfo info;
};

// The profile objects sd-bus has looked up, by index. An entry is refreshed from the Service on
// every look-up, so getters see the profile as it is when sd-bus resolves their call; a pointer
// to it stays valid until the entry is dropped.
class ProfileObjects {
 public:
  ProfileObjects(const ProfileCatalog& catalog, AkaService& aka) : catalog_(catalog), aka_(aka) {}
  ProfileObjects(const ProfileObjects&) = delete;
  ProfileObjects& operator=(const ProfileObjects&) = delete;

  const ProfileCatalog& catalog() const { return catalog_; }
  // The profile at `index` as the Service has it now; nullptr, with the entry dropped, when
  // there is none.
  ProfileObject* look_up(uint32_t index);
  // Drops the entry of a profile that is gone.
  void forget(uint32_t index) { objects_.erase(index); }

 private:
  const ProfileCatalog& catalog_;
  AkaService& aka_;
  std::map<uint32_t, ProfileObject> objects_;
};

// The active profile as the catalog has it now; nullopt when none is.
std::optional<ProfileInfo> active_profile_info(const ProfileCatalog& catalog);

extern const sd_bus_vtable profile_vtable[];
extern const sd_bus_vtable usim_vtable[];
// What each method of those vtables needs (bus_filter.cpp consults them).
extern const InterfaceAccess profile_access;
extern const InterfaceAccess usim_access;

// The USimApplication methods UmtsAuthenticate and GsmAuthenticate, for every object that answers
// them for one profile: `found` is the ProfileObject its find function handed back. Checks the
// arguments (RAND and AUTN 16 bytes each; one to three RANDs), then answers asynchronously with
// oFono's a{say} / aa{say} or the named error.
int method_umts_authenticate(sd_bus_message* m, void* found, sd_bus_error* ret_error);
int method_gsm_authenticate(sd_bus_message* m, void* found, sd_bus_error* ret_error);

// sd_bus_object_find_t for both vtables; `userdata` is the ProfileObjects. A path that is not a
// well-formed profile path is not ours (0); a well-formed one without a profile answers
// org.mcimd.Tre1.Error.NotFound (rather than sd-bus's UnknownObject), so that clients get one
// error name for "no such profile" whether they call the Manager or the profile. Otherwise
// `*found` is the ProfileObject.
int profile_object_find(sd_bus* bus, const char* path, const char* interface, void* userdata, void** found,
                        sd_bus_error* ret_error);

// sd_bus_node_enumerator_t: the object paths of every profile the Service lists.
int profile_node_enumerator(sd_bus* bus, const char* prefix, void* userdata, char*** nodes, sd_bus_error* ret_error);

}  // namespace mcimd::api
