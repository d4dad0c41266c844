#pragma once
// A client of wpa_supplicant's control interface: a UNIX datagram socket bound to a path of our
// own (wpa_supplicant answers to the sender's address) and connected to wpa_supplicant's socket.
// Replies to commands ("OK", "PONG") and events ("<3>CTRL-...") arrive on the same socket; a
// message that begins with '<' is an event (wpa_ctrl.h).
#include <chrono>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace mcimd::wpasim {

class ControlSocket {
 public:
  // Binds <local_dir>/mcimd-wpa-sim-<pid>-<n> and connects to ctrl_path. NotFound when
  // ctrl_path does not exist, IoError for the rest (wpa_supplicant not listening: ECONNREFUSED).
  [[nodiscard]] static Result<ControlSocket> connect(const std::filesystem::path& ctrl_path,
                                                     const std::filesystem::path& local_dir);
  ControlSocket(ControlSocket&& other) noexcept;
  ControlSocket& operator=(ControlSocket&&) = delete;
  ControlSocket(const ControlSocket&) = delete;
  ~ControlSocket();  // closes the socket and removes its path

  // IoError when wpa_supplicant is gone (its socket closed or removed).
  [[nodiscard]] Status send(std::string_view command);
  // One message, or nullopt when none came within timeout (or a signal interrupted the wait).
  // A message longer than the receive buffer comes back cut to one byte more than
  // kMaxEventSize, so the parser refuses it.
  [[nodiscard]] Result<std::optional<std::string>> receive(std::chrono::milliseconds timeout);
  // Sends a command and waits for its reply (trailing newline removed); events that arrive
  // meanwhile are appended to `events`. IoError on timeout.
  [[nodiscard]] Result<std::string> request(std::string_view command, std::chrono::milliseconds timeout,
                                            std::deque<std::string>& events);

 private:
  ControlSocket(int fd, std::filesystem::path local_path) : fd_(fd), local_path_(std::move(local_path)) {}
  int fd_ = -1;
  std::filesystem::path local_path_;
};

}  // namespace mcimd::wpasim
