// mcimd-wpa-sim: answers wpa_supplicant's external SIM requests (network option external_sim=1:
// EAP-AKA, EAP-AKA', EAP-SIM) with mcimd's USIM application over D-Bus. See --help.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <iostream>

#include "common/log.hpp"
#include "wpa-sim/bridge.hpp"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking wait ends with EINTR and the loop sees the flag
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mcimd;
  wpasim::BridgeOptions options;
  CLI::App app{"Answer wpa_supplicant's external SIM requests (EAP-AKA, AKA', SIM) with mcimd's USIM application"};
  app.add_option("--ctrl-path", options.ctrl_path, "wpa_supplicant's control socket, e.g. /run/wpa_supplicant/wlan0")
      ->required();
  std::string socket_dir;
  app.add_option("--socket-dir", socket_dir,
                 "Directory for the bridge's own socket, reachable by wpa_supplicant "
                 "(default: $RUNTIME_DIRECTORY, else /tmp)");
  std::string profile;
  app.add_option("--profile", profile, "Profile object path (default: mcimd's active profile)");
  std::string bus_address;
  app.add_option("--bus-address", bus_address, "D-Bus address of mcimd's bus (default: the system bus)");
  int mnc_length = 0;
  app.add_option("--mnc-length", mnc_length,
                 "Digits of the home network's MNC in the permanent identity's realm "
                 "(default: the profile's operator id, when it is the MCC and MNC its IMSI begins with)")
      ->check(CLI::Range(2, 3));
  unsigned ping_seconds = 5;
  app.add_option("--ping-interval", ping_seconds, "Seconds without traffic before wpa_supplicant is pinged")
      ->check(CLI::Range(1u, 3600u));
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug messages");
  CLI11_PARSE(app, argc, argv);

  if (verbose) log::set_max_level(log::Level::Debug);
  if (!profile.empty()) options.profile = profile;
  if (!bus_address.empty()) options.bus_address = bus_address;
  if (mnc_length != 0) options.mnc_length = mnc_length;
  if (socket_dir.empty()) {
    const char* runtime = std::getenv("RUNTIME_DIRECTORY");  // systemd's RuntimeDirectory=
    socket_dir = runtime && *runtime ? runtime : "/tmp";
  }
  options.socket_dir = socket_dir;
  options.ping_interval = std::chrono::seconds(ping_seconds);
  install_signal_handlers();
  return wpasim::run_bridge(options, g_stop);
}
