#include "dbus-api/bus_reply.hpp"

#include <cerrno>
#include <cstring>
#include <exception>

#include "common/log.hpp"
#include "dbus-api/names.hpp"

namespace mcimd::api {

std::string errno_text(int r) { return std::strerror(r < 0 ? -r : r); }

int set_error(sd_bus_error* ret, const Error& error) {
  return sd_bus_error_set(ret, error_name(error.code).c_str(), error.message.c_str());
}

Error internal_error(std::string_view what) {
  return Error{Code::Internal, "Internal error while handling " + std::string(what), std::nullopt};
}

void log_handler_failure(std::string_view what) noexcept {
  try {
    try {
      throw;
    } catch (const std::exception& e) {
      log::error("Failed to handle " + std::string(what) + ": " + e.what());
    } catch (...) {
      log::error("Failed to handle " + std::string(what) + ": unknown exception");
    }
  } catch (...) {
  }
}

int handler_failed(sd_bus_error* ret, std::string_view what) noexcept {
  log_handler_failure(what);
  try {
    return set_error(ret, internal_error(what));
  } catch (...) {
    return -ENOMEM;
  }
}

void wipe_byte_arrays(sd_bus_message* m) {
  for (;;) {
    char type = 0;
    const char* contents = nullptr;
    if (sd_bus_message_peek_type(m, &type, &contents) <= 0) return;
    if (type == SD_BUS_TYPE_ARRAY && contents && std::string_view(contents) == "y") {
      const void* data = nullptr;
      size_t size = 0;
      if (sd_bus_message_read_array(m, 'y', &data, &size) < 0) return;
      // The message body is heap memory sd-bus allocated for us; only the reading API is const.
      if (data && size) wipe(const_cast<void*>(data), size);
      continue;
    }
    if (type == SD_BUS_TYPE_ARRAY || type == SD_BUS_TYPE_STRUCT || type == SD_BUS_TYPE_DICT_ENTRY ||
        type == SD_BUS_TYPE_VARIANT) {
      if (sd_bus_message_enter_container(m, type, contents) <= 0) return;
      wipe_byte_arrays(m);
      if (sd_bus_message_exit_container(m) < 0) return;
      continue;
    }
    if (sd_bus_message_skip(m, nullptr) < 0) return;
  }
}

PendingCall::PendingCall(sd_bus_message* call, std::string what)
    : call_(sd_bus_message_ref(call)), what_(std::move(what)) {}

PendingCall::~PendingCall() {
  if (answered_) return;
  try {
    fail(Error{Code::Internal, "The request was dropped without an answer", std::nullopt});
  } catch (...) {
  }
}

SdBusMessage PendingCall::new_reply() {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_return(call_.get(), &raw);
  if (r < 0) {
    log::warning("Failed to create the reply to " + what_ + ": " + errno_text(r));
    fail(internal_error(what_));
    return nullptr;
  }
  return SdBusMessage(raw);
}

void PendingCall::fail_to_build(int r) {
  log::warning("Failed to build the reply to " + what_ + ": " + errno_text(r));
  fail(internal_error(what_));
}

void PendingCall::send(sd_bus_message* reply, bool secret) {
  int r = sd_bus_send(nullptr, reply, nullptr);
  answered_ = true;
  if (r < 0) return fail_to_send(r);
  if (secret) wipe_if_written(reply);
}

void PendingCall::fail_internal() noexcept {
  try {
    fail(internal_error(what_));
  } catch (...) {
    answered_ = true;  // not even the error could be built (out of memory)
  }
}

void PendingCall::fail_thrown() noexcept {
  log_handler_failure(what_);
  fail_internal();
}

void PendingCall::fail(const Error& error) noexcept {
  if (answered_) return;
  answered_ = true;
  try {
    if (error.code == Code::Internal)
      log::warning(what_ + " failed: " + error.describe());
    else
      log::debug(what_ + " failed: " + error.describe());
    int r = sd_bus_reply_method_errorf(call_.get(), error_name(error.code).c_str(), "%s", error.message.c_str());
    if (r < 0) fail_to_send(r);
  } catch (...) {
  }
}

void PendingCall::fail_to_send(int r) noexcept {
  answered_ = true;
  try {
    log::warning("Failed to send the reply to " + what_ + ": " + errno_text(r) + ", ignoring.");
  } catch (...) {
  }
}

// sd_bus_send() writes straight to the socket when nothing else is queued; if the write queue
// is empty afterwards, our message has been written in full and its buffer is ours to clear.
// Otherwise it is still queued and libsystemd frees it later, unwiped.
void PendingCall::wipe_if_written(sd_bus_message* reply) noexcept {
  uint64_t queued = 1;
  sd_bus* bus = sd_bus_message_get_bus(reply);
  if (!bus || sd_bus_get_n_queued_write(bus, &queued) < 0 || queued != 0) return;
  if (sd_bus_message_rewind(reply, 1) < 0) return;
  wipe_byte_arrays(reply);
}

void reply_status(PendingCall& pending, Status result) {
  if (!result) return pending.fail(result.error());
  pending.succeed([](sd_bus_message*) { return 0; });
}

Bytes to_bytes(const void* data, size_t size) {
  auto* p = static_cast<const uint8_t*>(data);
  return size ? Bytes(p, p + size) : Bytes{};
}

Result<Bytes> read_fixed_bytes(sd_bus_message* m, std::string_view what, std::size_t expected) {
  const void* data = nullptr;
  size_t size = 0;
  int r = sd_bus_message_read_array(m, 'y', &data, &size);
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read " + std::string(what) + ": " + errno_text(r));
  if (size != expected)
    return fail(Code::InvalidArgument,
                std::string(what) + " must be " + std::to_string(expected) + " bytes, got " + std::to_string(size));
  return to_bytes(data, size);
}

Result<Bytes> read_bounded_bytes(sd_bus_message* m, std::string_view what, std::size_t min_size, std::size_t max_size) {
  const void* data = nullptr;
  size_t size = 0;
  int r = sd_bus_message_read_array(m, 'y', &data, &size);
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read " + std::string(what) + ": " + errno_text(r));
  if (size < min_size || size > max_size)
    return fail(Code::InvalidArgument, std::string(what) + " must be " + std::to_string(min_size) + " to " +
                                           std::to_string(max_size) + " bytes, got " + std::to_string(size));
  return to_bytes(data, size);
}

}  // namespace mcimd::api
