#pragma once
// BusAdapter: publishes a Service on D-Bus as org.mcimd.Tre1.
//
// Objects (see org.mcimd.Tre1.xml for the full interface description):
//   /org/mcimd/Tre1                   org.mcimd.Tre1.Manager, org.mcimd.Tre1.Attestation,
//                                     org.freedesktop.DBus.ObjectManager
//   /org/mcimd/Tre1/Profile/<index>   org.mcimd.Tre1.Profile, org.mcimd.Tre1.USimApplication
//
// Every incoming method call on these objects (including Properties, Introspectable,
// ObjectManager and Peer) first passes one bus filter (bus_filter.hpp) that refuses the call with
// org.mcimd.Tre1.Error.NotAuthorized unless the caller's role allows it. The handlers, one file
// per interface (manager_dbus, attestation_dbus, profile_dbus), then validate their arguments,
// call the Service and answer asynchronously from the Service's reply callback (bus_reply.hpp),
// so the event loop never waits for the TPM. Errors travel as org.mcimd.Tre1.Error.<code_name>,
// each with a human message.
//
// With options.ofono_compat, the oFono-shaped objects of ofono_compat.hpp are registered after
// ours, on the same connection, and follow the active profile through manager_changed().
#include <memory>
#include <optional>

#include "common/error.hpp"
#include "dbus-api/bus_handles.hpp"
#include "dbus-api/names.hpp"
#include "dbus-api/ofono_compat.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::api {

struct BusAdapterOptions {
  AccessPolicy policy;
  // Request org.mcimd.Tre1 once all objects are registered, so that a client that sees the name
  // also sees every object. Turn off when the caller owns the name by other means.
  bool request_name = true;
  // Also serve the oFono-shaped objects under org.ofono (ofono_compat.hpp); off when unset.
  std::optional<OfonoCompatOptions> ofono_compat;
};

class BusAdapter final : private ServiceListener {
 public:
  // Registers the objects on `bus` (connected, attached to an sd_event loop by the caller),
  // becomes `service`'s listener and requests the bus name unless options say not to.
  // Fails when a registration fails or the name (or org.ofono, with the oFono compatibility) is
  // owned by someone else.
  // `service` must outlive the adapter; replies still pending when the adapter goes away are
  // still delivered, since they hold only the call message.
  [[nodiscard]] static Result<std::unique_ptr<BusAdapter>> create(sd_bus* bus, Service& service,
                                                                  BusAdapterOptions options);
  // Unregisters the objects, clears the Service's listener and releases the name.
  ~BusAdapter() override;
  BusAdapter(const BusAdapter&) = delete;
  BusAdapter& operator=(const BusAdapter&) = delete;

 private:
  struct State;

  BusAdapter(sd_bus* bus, Service& service, BusAdapterOptions options);
  Status register_objects();

  // ServiceListener: turned into InterfacesAdded / PropertiesChanged / InterfacesRemoved.
  void profile_added(const ProfileInfo& info) override;
  void profile_changed(const ProfileInfo& info) override;
  void profile_removed(const ProfileInfo& info) override;
  void manager_changed() override;

  std::unique_ptr<State> state_;
};

}  // namespace mcimd::api
