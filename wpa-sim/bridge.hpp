#pragma once
// The bridge's loop: attach to wpa_supplicant's control socket, answer every SIM request with
// mcimd's USIM application, and attach again whenever wpa_supplicant goes away and comes back.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace mcimd::wpasim {

struct BridgeOptions {
  std::filesystem::path ctrl_path;   // wpa_supplicant's socket, e.g. /run/wpa_supplicant/wlan0
  std::filesystem::path socket_dir;  // where our own socket is bound (wpa_supplicant must reach it)
  std::optional<std::string> profile;      // object path; default: mcimd's active profile at each request
  std::optional<std::string> bus_address;  // default: the system bus
  // The MNC's length for the permanent identity (2 or 3); default: from the profile's operator id.
  std::optional<int> mnc_length;
  // With no traffic for this long, PING tells whether wpa_supplicant is still there; a restarted
  // wpa_supplicant has a new socket, and the old connection answers ECONNREFUSED.
  std::chrono::milliseconds ping_interval{5000};
  std::chrono::milliseconds reply_timeout{3000};
  std::chrono::milliseconds retry_interval{1000};
};

// Runs until `stop` is set (a signal handler sets it; blocking waits end with EINTR). Returns
// the process exit status: 0 after a stop, 1 when the options cannot work at all.
int run_bridge(const BridgeOptions& options, const std::atomic<bool>& stop);

}  // namespace mcimd::wpasim
