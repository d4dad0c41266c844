#include "dbus-api/adapter.hpp"

#include <cerrno>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "common/log.hpp"
#include "dbus-api/attestation_dbus.hpp"
#include "dbus-api/bus_filter.hpp"
#include "dbus-api/bus_reply.hpp"
#include "dbus-api/manager_dbus.hpp"
#include "dbus-api/names.hpp"
#include "dbus-api/profile_dbus.hpp"

namespace mcimd::api {

// What the registrations point at: each vtable's userdata lives here, declared before the slots
// so that the slots unregister first.
struct BusAdapter::State {
  SdBusRef bus;
  Service& service;                 // userdata of the Manager vtable
  AttestationService& attestation;  // userdata of the Attestation vtable
  BusAdapterOptions options;  // options.policy: userdata of the filter
  ProfileObjects profiles;    // userdata of the profile vtables and their enumerator
  bool owns_name = false;
  SdBusSlot filter_slot, manager_slot, attestation_slot, object_manager_slot, profile_slot, usim_slot,
      enumerator_slot;
  // Refers to `profiles`; goes before it.
  std::unique_ptr<OfonoCompat> ofono;

  State(sd_bus* b, Service& s, BusAdapterOptions o)
      : bus(sd_bus_ref(b)), service(s), attestation(s), options(std::move(o)), profiles(s, s) {}
};

namespace {

Status check(int r, std::string_view what) {
  if (r >= 0) return {};
  return fail(Code::IoError, "Failed to " + std::string(what) + ": " + errno_text(r));
}

void log_emit_failure(int r, std::string_view what, std::string_view path) {
  if (r >= 0) return;
  log::warning("Failed to emit " + std::string(what) + " for " + std::string(path) + ": " + errno_text(r) +
               ", ignoring.");
}

}  // namespace

BusAdapter::BusAdapter(sd_bus* bus, Service& service, BusAdapterOptions options)
    : state_(std::make_unique<State>(bus, service, std::move(options))) {}

Result<std::unique_ptr<BusAdapter>> BusAdapter::create(sd_bus* bus, Service& service, BusAdapterOptions options) {
  if (!bus) return fail(Code::InvalidArgument, "No bus connection given");
  register_error_map();
  std::unique_ptr<BusAdapter> adapter(new BusAdapter(bus, service, std::move(options)));
  MCIMD_CHECK(adapter->register_objects());
  State& s = *adapter->state_;
  if (s.options.ofono_compat)
    s.ofono = MCIMD_TRY(OfonoCompat::create(bus, s.profiles, s.options.policy, *s.options.ofono_compat));
  service.set_listener(adapter.get());
  if (adapter->state_->options.request_name) {
    int r = sd_bus_request_name(bus, kBusName, 0);
    if (r < 0)
      return fail(r == -EEXIST ? Code::AlreadyExists : Code::IoError,
                  std::string("Failed to acquire the bus name ") + kBusName + ": " + errno_text(r));
    adapter->state_->owns_name = true;
  }
  return adapter;
}

Status BusAdapter::register_objects() {
  State& s = *state_;
  sd_bus* bus = s.bus.get();
  sd_bus_slot* slot = nullptr;

  MCIMD_CHECK(check(sd_bus_add_filter(bus, &slot, filter_authorize, &s.options.policy),
                    "install the authorisation filter"));
  s.filter_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_object_vtable(bus, &slot, kRootPath, kManagerInterface, manager_vtable, &s.service),
                    "register the Manager interface"));
  s.manager_slot.reset(slot);
  MCIMD_CHECK(check(
      sd_bus_add_object_vtable(bus, &slot, kRootPath, kAttestationInterface, attestation_vtable, &s.attestation),
      "register the Attestation interface"));
  s.attestation_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_object_manager(bus, &slot, kRootPath), "register the object manager"));
  s.object_manager_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_fallback_vtable(bus, &slot, kProfilePathPrefix, kProfileInterface, profile_vtable,
                                               profile_object_find, &s.profiles),
                    "register the Profile interface"));
  s.profile_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_fallback_vtable(bus, &slot, kProfilePathPrefix, kUsimInterface, usim_vtable,
                                               profile_object_find, &s.profiles),
                    "register the USimApplication interface"));
  s.usim_slot.reset(slot);
  MCIMD_CHECK(check(sd_bus_add_node_enumerator(bus, &slot, kProfilePathPrefix, profile_node_enumerator, &s.profiles),
                    "register the profile enumerator"));
  s.enumerator_slot.reset(slot);
  return {};
}

BusAdapter::~BusAdapter() {
  if (!state_) return;
  state_->service.set_listener(nullptr);
  if (state_->owns_name) {
    int r = sd_bus_release_name_async(state_->bus.get(), nullptr, kBusName, nullptr, nullptr);
    if (r < 0) log::debug(std::string("Failed to release the bus name: ") + errno_text(r) + ", ignoring.");
  }
}

void BusAdapter::profile_added(const ProfileInfo& info) {
  try {
    std::string path = profile_path(info.index);
    int r = sd_bus_emit_interfaces_added(state_->bus.get(), path.c_str(), kProfileInterface, kUsimInterface, nullptr);
    log_emit_failure(r, "InterfacesAdded", path);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit InterfacesAdded: ") + e.what() + ", ignoring.");
  }
}

void BusAdapter::profile_changed(const ProfileInfo& info) {
  try {
    std::string path = profile_path(info.index);
    int r = sd_bus_emit_properties_changed(state_->bus.get(), path.c_str(), kProfileInterface, "State", nullptr);
    log_emit_failure(r, "PropertiesChanged", path);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit PropertiesChanged: ") + e.what() + ", ignoring.");
  }
}

void BusAdapter::profile_removed(const ProfileInfo& info) {
  state_->profiles.forget(info.index);
  try {
    std::string path = profile_path(info.index);
    int r = sd_bus_emit_interfaces_removed(state_->bus.get(), path.c_str(), kProfileInterface, kUsimInterface, nullptr);
    log_emit_failure(r, "InterfacesRemoved", path);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit InterfacesRemoved: ") + e.what() + ", ignoring.");
  }
}

void BusAdapter::manager_changed() {
  try {
    int r = sd_bus_emit_properties_changed(state_->bus.get(), kRootPath, kManagerInterface, "ActiveProfile",
                                           "PlatformState", nullptr);
    log_emit_failure(r, "PropertiesChanged", kRootPath);
  } catch (const std::exception& e) {
    log::warning(std::string("Failed to emit PropertiesChanged: ") + e.what() + ", ignoring.");
  }
  if (state_->ofono) state_->ofono->active_profile_changed();
}

}  // namespace mcimd::api
