#pragma once
// RAII owners for the libsystemd handles used by the adapter and the client.
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "common/c_handle.hpp"

namespace mcimd::api {

using SdBus = CHandle<sd_bus, sd_bus_flush_close_unref>;  // a connection we opened
using SdBusRef = CHandle<sd_bus, sd_bus_unref>;           // a reference to someone else's connection
using SdBusMessage = CHandle<sd_bus_message, sd_bus_message_unref>;
using SdBusSlot = CHandle<sd_bus_slot, sd_bus_slot_unref>;
using SdBusCreds = CHandle<sd_bus_creds, sd_bus_creds_unref>;
using SdEvent = CHandle<sd_event, sd_event_unref>;
using SdEventSource = CHandle<sd_event_source, sd_event_source_unref>;

// sd_bus_error owner: frees its strings at scope end.
class BusError {
 public:
  BusError() = default;
  ~BusError() { sd_bus_error_free(&error_); }
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  sd_bus_error* get() { return &error_; }
  const sd_bus_error* get() const { return &error_; }
  bool is_set() const { return sd_bus_error_is_set(&error_); }
  const char* name() const { return error_.name; }
  const char* message() const { return error_.message; }

 private:
  sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

}  // namespace mcimd::api
