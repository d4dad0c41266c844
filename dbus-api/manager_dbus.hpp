#pragma once
// org.mcimd.Tre1.Manager on the root object /org/mcimd/Tre1: ListProfiles, InstallProfile,
// EnableProfile, DisableProfile, DeleteProfile; properties ActiveProfile and PlatformState.
// Registered as an object vtable at kRootPath, one object at a fixed path, so it needs no find
// function and no enumerator; its userdata is the Service.
#include <systemd/sd-bus.h>

#include "dbus-api/access.hpp"

namespace mcimd::api {

extern const sd_bus_vtable manager_vtable[];
// What each method of manager_vtable needs (bus_filter.cpp consults it).
extern const InterfaceAccess manager_access;

}  // namespace mcimd::api
