// mcimd: wires the configuration, the service core and the D-Bus adapter to an sd-event loop.
#include <signal.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "common/bytes.hpp"
#include "common/c_handle.hpp"
#include "common/log.hpp"
#include "daemon/config.hpp"
#include "daemon/ofono_subscriber.hpp"
#include "daemon/service_core.hpp"
#include "dbus-api/adapter.hpp"

using namespace mcimd;

namespace {

using SdEvent = CHandle<sd_event, sd_event_unref>;
using SdBus = CHandle<sd_bus, sd_bus_flush_close_unref>;
using SdEventSource = CHandle<sd_event_source, sd_event_source_disable_unref>;

struct Daemon {
  daemon::Config config;
  SdEvent loop;
  SdBus bus;
  std::unique_ptr<daemon::ServiceCore> core;
  std::unique_ptr<api::BusAdapter> adapter;
  SdEventSource watchdog;
  uint64_t watchdog_usec = 0;
  int exit_code = 0;
};

void notify_status(Daemon& d) { sd_notifyf(0, "STATUS=%s", d.core->status_line().c_str()); }

// Pings the systemd watchdog only while the TPM worker makes progress: a job stuck in the TPM
// for longer than the watchdog interval lets systemd restart us.
int on_watchdog(sd_event_source* s, uint64_t usec, void* userdata) {
  auto& d = *static_cast<Daemon*>(userdata);
  auto stuck = d.core->worker().running_for();
  if (std::chrono::duration_cast<std::chrono::microseconds>(stuck).count() < static_cast<int64_t>(d.watchdog_usec))
    sd_notify(0, "WATCHDOG=1");
  else
    log::warning("TPM job running for " + std::to_string(stuck.count()) + " ms; withholding the watchdog ping");
  notify_status(d);
  sd_event_source_set_time(s, usec + d.watchdog_usec / 2);
  return 0;
}

api::AccessPolicy access_policy(const daemon::AccessConfig& a) {
  return api::AccessPolicy{a.modem_users, a.modem_groups, a.admin_users, a.admin_groups, a.agent_users, a.agent_groups};
}

api::BusAdapterOptions adapter_options(const daemon::Config& c) {
  api::BusAdapterOptions options{access_policy(c.access), /*request_name=*/true, /*ofono_compat=*/std::nullopt};
  if (c.dbus.ofono_compat)
    options.ofono_compat = api::OfonoCompatOptions{
        [mnc_length = c.dbus.ofono_compat_mnc_length](const api::ProfileInfo& profile) {
          return daemon::ofono_subscriber(profile, mnc_length);
        }};
  return options;
}

void on_started(Daemon& d, Status st) {
  if (!st) {
    log::error("Failed to start: " + st.error().describe());
    sd_notifyf(0, "STATUS=Failed to start: %s", st.error().message.c_str());
    d.exit_code = 1;
    sd_event_exit(d.loop.get(), 1);
    return;
  }
  auto adapter = api::BusAdapter::create(d.bus.get(), *d.core, adapter_options(d.config));
  if (!adapter) {
    log::error("Failed to publish the D-Bus API: " + adapter.error().describe());
    d.exit_code = 1;
    sd_event_exit(d.loop.get(), 1);
    return;
  }
  d.adapter = std::move(*adapter);
  if (sd_watchdog_enabled(0, &d.watchdog_usec) > 0 && d.watchdog_usec > 0) {
    uint64_t now = 0;
    sd_event_now(d.loop.get(), CLOCK_MONOTONIC, &now);
    sd_event_source* s = nullptr;
    if (sd_event_add_time(d.loop.get(), &s, CLOCK_MONOTONIC, now + d.watchdog_usec / 2, 0, on_watchdog, &d) >= 0) {
      d.watchdog.reset(s);
      sd_event_source_set_enabled(s, SD_EVENT_ON);
    }
  }
  log::notice("mcimd ready: " + d.core->status_line());
  sd_notify(0, "READY=1");
  notify_status(d);
}

int on_signal(sd_event_source*, const struct signalfd_siginfo*, void* userdata) {
  auto& d = *static_cast<Daemon*>(userdata);
  log::notice("Stopping on signal");
  sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
  sd_event_exit(d.loop.get(), d.exit_code);
  return 0;
}

int run(Daemon& d) {
  // Signals must be blocked before any thread starts, so that signalfd sees them all.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);

  sd_event* loop = nullptr;
  if (int r = sd_event_new(&loop); r < 0) {
    log::error(std::string("Failed to create the event loop: ") + strerror(-r));
    return 1;
  }
  d.loop.reset(loop);
  sd_event_add_signal(loop, nullptr, SIGTERM, on_signal, &d);
  sd_event_add_signal(loop, nullptr, SIGINT, on_signal, &d);

  sd_bus* bus = nullptr;
  if (int r = sd_bus_open_system(&bus); r < 0) {
    log::error(std::string("Failed to connect to the system bus: ") + strerror(-r));
    return 1;
  }
  d.bus.reset(bus);
  if (int r = sd_bus_attach_event(bus, loop, SD_EVENT_PRIORITY_NORMAL); r < 0) {
    log::error(std::string("Failed to attach the bus to the event loop: ") + strerror(-r));
    return 1;
  }

  auto core = daemon::ServiceCore::create(loop, d.config);
  if (!core) {
    log::error("Failed to set up the service: " + core.error().describe());
    return 1;
  }
  d.core = std::move(*core);
  sd_notify(0, "STATUS=Opening the TPM and the store");
  d.core->start([&d](Status st) { on_started(d, std::move(st)); });

  int r = sd_event_loop(loop);
  d.adapter.reset();
  d.core->stop();
  if (r < 0) {
    log::error(std::string("Event loop failed: ") + strerror(-r));
    return 1;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mcimd — keeps the MCIM in the TPM and serves the modem's authentication over D-Bus"};
  std::string config_path = "/etc/mcimd/mcimd.yaml";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "Configuration file (YAML)")->capture_default_str();
  app.add_flag("--check-config", check_only, "Validate the configuration and exit");
  app.set_version_flag("--version", "mcimd 0.1.0");
  CLI11_PARSE(app, argc, argv);

  harden_process_memory();
  // tpm2-tss prints its own warnings when the TPM refuses (a policy no longer met, an absent
  // SRK on first start); mcimd reports those failures itself, once. Set before any thread starts.
  if (!std::getenv("TSS2_LOG")) setenv("TSS2_LOG", "all+none", 0);
  auto config = daemon::load_config(config_path);
  if (!config) {
    std::cerr << "mcimd: " << config.error().message << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << config_path << ": OK\n";
    return 0;
  }
  log::set_max_level(config->log_level);
  Daemon d;
  d.config = std::move(*config);
  return run(d);
}
