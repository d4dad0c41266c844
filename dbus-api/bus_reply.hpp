#pragma once
// What every sd-bus handler of ours shares:
//  - guarded(): no exception crosses back into libsystemd; one becomes an Internal error;
//  - set_error(): an Error travels as org.mcimd.Tre1.Error.<code_name>, with its message;
//  - PendingCall, dispatch() and replying(): the answer to a call is sent later, from the
//    Service's reply callback, so the event loop never waits for the TPM;
//  - argument readers that check sizes before anything reaches the Service;
//  - wiping the sent copy of a reply whose byte arrays carried secrets.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "dbus-api/bus_handles.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::api {

std::string errno_text(int r);

// Sets `ret` to our named error; returns the negative errno sd-bus expects from a handler.
int set_error(sd_bus_error* ret, const Error& error);

Error internal_error(std::string_view what);

// Logs the exception being handled as "Failed to handle <what>: <reason>". Call it only from
// a catch block.
void log_handler_failure(std::string_view what) noexcept;

// Logs the exception being handled and sets `ret` to an Internal error; returns what sd-bus
// expects from the handler. Call it only from a catch block.
int handler_failed(sd_bus_error* ret, std::string_view what) noexcept;

// Runs a handler body so that no exception reaches sd-bus: it becomes an Internal error.
template <class Body>
int guarded(sd_bus_error* ret, std::string_view what, Body&& body) noexcept {
  try {
    return body();
  } catch (...) {
    return handler_failed(ret, what);
  }
}

// Walks a sealed message we built and wipes every byte array in it. Only byte arrays hold
// secrets in our replies (RES, CK, IK, Kc, SRES, an activated credential); strings and paths are
// left alone.
void wipe_byte_arrays(sd_bus_message* m);

// The call of one asynchronous method: holds a reference to the call message so the answer can
// be sent later, from the Service's reply callback. Answers once; a call the Service dropped
// without answering is answered with Internal so the client does not wait for its timeout.
class PendingCall {
 public:
  PendingCall(sd_bus_message* call, std::string what);
  ~PendingCall();
  PendingCall(const PendingCall&) = delete;
  PendingCall& operator=(const PendingCall&) = delete;

  // Sends a method return whose body `append(reply)` writes (negative errno on failure). With
  // `secret`, the sent copy's byte arrays are wiped once libsystemd has written it out.
  template <class Append>
  void succeed(Append&& append, bool secret = false) noexcept {
    if (answered_) return;
    try {
      SdBusMessage reply = new_reply();
      if (!reply) return;
      int r = append(reply.get());
      if (r < 0) return fail_to_build(r);
      send(reply.get(), secret);
    } catch (...) {
      fail_internal();
    }
  }

  void fail_internal() noexcept;
  // Logs the exception being handled and answers Internal. Call it only from a catch block.
  void fail_thrown() noexcept;
  void fail(const Error& error) noexcept;

 private:
  // The method return to fill in; null, with the call answered Internal, when sd-bus cannot
  // make one.
  SdBusMessage new_reply();
  void fail_to_build(int r);
  void send(sd_bus_message* reply, bool secret);
  void fail_to_send(int r) noexcept;
  void wipe_if_written(sd_bus_message* reply) noexcept;

  SdBusMessage call_;
  std::string what_;
  bool answered_ = false;
};

using Pending = std::shared_ptr<PendingCall>;

// The Service's reply callback for `pending`: runs `body(pending, result)` so that nothing it
// throws reaches the Service's code; an exception becomes an Internal error answer.
template <class T, class Body>
Reply<T> replying(const Pending& pending, Body body) {
  return [pending, body = std::move(body)](Result<T> result) {
    try {
      body(*pending, std::move(result));
    } catch (...) {
      pending->fail_internal();
    }
  };
}

// The Service's reply callback for a call that answers with one value: the error, or a method
// return whose body `append(reply, value)` writes (negative errno on failure). With `secret`,
// the sent copy's byte arrays are wiped (see PendingCall::succeed).
template <class T, class Append>
Reply<T> answering(const Pending& pending, Append append, bool secret = false) {
  return replying<T>(pending, [append = std::move(append), secret](PendingCall& call, Result<T> result) {
    if (!result) return call.fail(result.error());
    call.succeed([&](sd_bus_message* reply) { return append(reply, *result); }, secret);
  });
}

// Calls the Service with a fresh PendingCall; an exception thrown by the Service itself becomes
// an Internal error answer. Returns 1: the call is handled, the answer follows later.
template <class Call>
int dispatch(sd_bus_message* m, std::string what, Call&& call) {
  auto pending = std::make_shared<PendingCall>(m, std::move(what));
  try {
    call(pending);
  } catch (...) {
    pending->fail_thrown();
  }
  return 1;
}

// Answers a call that returns nothing: an empty method return, or the error.
void reply_status(PendingCall& pending, Status result);

Bytes to_bytes(const void* data, size_t size);

// A byte array of exactly `expected` bytes; InvalidArgument naming `what` otherwise.
Result<Bytes> read_fixed_bytes(sd_bus_message* m, std::string_view what, std::size_t expected);

// A byte array of min_size..max_size bytes; InvalidArgument naming `what` otherwise.
Result<Bytes> read_bounded_bytes(sd_bus_message* m, std::string_view what, std::size_t min_size, std::size_t max_size);

}  // namespace mcimd::api
