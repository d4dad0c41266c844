#pragma once
// org.mcimd.Tre1.Attestation on the root object /org/mcimd/Tre1 (TR 33.812 platform validation):
// GetEndorsement, ActivateCredential, GetEvidence, ValidatePlatform. Registered as an object
// vtable at kRootPath, one object at a fixed path, so it needs no find function and no
// enumerator; its userdata is the Service.
#include <systemd/sd-bus.h>

#include "dbus-api/access.hpp"

namespace mcimd::api {

extern const sd_bus_vtable attestation_vtable[];
// What each method of attestation_vtable needs (bus_filter.cpp consults it).
extern const InterfaceAccess attestation_access;

}  // namespace mcimd::api
