// mcimd-bench: what one AKA costs through the real daemon, against baselines measured in the same
// run (ratios, not absolute numbers, are what compare across machines). Starts its own swtpm
// instances, dbus-daemon and mcimd.
//
//   mcimd-bench [--scale N]    N multiplies the iteration counts (default 1)
//
// Paths measured:
//   1. software Milenage (aka::usim_authenticate over OpenSSL AES), in-process: the floor;
//   2. `systemd-creds decrypt` of a credential sealed to PCR 7 on a swtpm: what unsealing one
//      small TPM-bound secret costs with the system's own tool (a process each, like a
//      credential consumer); `true` spawned the same way shows the process share;
//   3. UmtsAuthenticate through mcimd over D-Bus, one caller, steady state;
//   4. the same with four concurrent callers;
//   5. device-side evidence generation, in-process.
// TPM commands per AKA are counted at the TPM, from swtpm's own log of every command it received
// while the real daemon answered (no copy of the daemon's code is involved), and NV writes from
// the writes swtpm makes to its NV state file.
#include <fcntl.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include "aka/usim.hpp"
#include "attestation/device.hpp"
#include "tests/support/mcimd_instance.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::aka;
using Clock = std::chrono::steady_clock;

namespace {

const Block kK = {0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc};
const Block kOpc = {0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf};

struct Stats {
  std::string name;
  std::vector<double> us;  // latencies in microseconds
  double wall_s = 0;       // for throughput
  std::size_t ops() const { return us.size(); }
  double pct(double p) const {
    if (us.empty()) return 0;
    auto v = us;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
  }
};

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

Rand rand_for(uint64_t i) {
  Rand r{};
  for (int b = 0; b < 8; ++b) r[b] = static_cast<uint8_t>(i >> (8 * b));
  r[15] = 0x5a;
  return r;
}

[[noreturn]] void die(const std::string& what) {
  std::cerr << "mcimd-bench: " << what << "\n";
  std::exit(1);
}

template <class T>
T must(Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().describe());
  return std::move(*r);
}

Stats software(std::size_t n) {
  Stats s{"software Milenage (OpenSSL), in-process", {}, 0};
  auto k = must(OpenSslAes::create(kK), "AES key");
  auto sqns = must(SqnArray::create(SqnParameters{}), "SQN array");
  auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    auto v = must(generate_vector(k, kOpc, rand_for(i), sqn_from_u64(0x20 * (i + 1)), Amf{0x80, 0}), "vector");
    auto t0 = Clock::now();
    auto out = must(usim_authenticate(k, kOpc, sqns, v.rand, v.autn), "usim");
    s.us.push_back(micros(Clock::now() - t0));
    if (!std::holds_alternative<UmtsSuccess>(out)) die("software AKA refused a fresh vector");
  }
  s.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return s;
}

// posix_spawn and a blocking waitpid: no polling in the measurement. Output goes to /dev/null.
int spawn_and_wait(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int r = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (r != 0) die(argv[0] + ": " + strerror(r));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// A process per call, as a credential consumer would run it; `after` runs untimed between calls.
Stats spawned(const std::string& name, const std::vector<std::string>& argv, std::size_t n,
              const std::function<void()>& after = {}) {
  Stats s{name, {}, 0};
  double busy_s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    int status = spawn_and_wait(argv);
    auto elapsed = Clock::now() - t0;
    s.us.push_back(micros(elapsed));
    busy_s += std::chrono::duration<double>(elapsed).count();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die(argv[0] + " failed (run it by hand to see why)");
    if (after) after();
  }
  s.wall_s = busy_s;
  return s;
}

std::vector<Stats> systemd_creds(std::size_t n) {
  test::Swtpm swtpm;
  test::TempDir dir;
  const std::string device = "--tpm2-device=" + swtpm.tcti();
  auto plain = dir.path() / "plain";
  std::ofstream(plain) << std::string(16, 'k');  // a 16-byte secret, like OPc
  auto sealed = dir.path() / "k.cred";
  auto made = test::run({"systemd-creds", "encrypt", "--with-key=tpm2", device, "--tpm2-pcrs=7", "--name=k",
                         plain.string(), sealed.string()});
  if (made.exit_code != 0) die("systemd-creds encrypt failed: " + made.err);
  std::vector<Stats> out;
  // systemd's TPM code leaves its sessions for the kernel's resource manager to flush when the
  // process closes /dev/tpmrm0; swtpm has none, so the bench flushes them between calls, untimed.
  auto flush = [&] { test::run({"tpm2_flushcontext", "-l"}, {{"TPM2TOOLS_TCTI", swtpm.tcti()}}); };
  flush();
  out.push_back(spawned("`systemd-creds decrypt` (swtpm, PCR 7), a process each",
                        {"systemd-creds", "decrypt", device, "--name=k", sealed.string(), (dir.path() / "out").string()},
                        n, flush));
  out.push_back(spawned("`true`, a process each (the spawn share of the row above)", {"true"}, n));
  return out;
}

// Device-side evidence: read PCRs, quote, re-read, over every allocated bank, PCRs 0–23.
Stats evidence_inprocess(std::size_t n, double& commands_per_evidence) {
  Stats s{"evidence (quote, all banks, PCRs 0-23), in-process", {}, 0};
  test::Swtpm swtpm;
  tpm::ContextOptions opts;
  opts.tcti = swtpm.tcti();
  auto ctx = must(tpm::Context::open(opts), "open");
  auto ak = must(ctx->create_ak(), "create AK");
  attestation::EvidenceOptions options;
  options.event_log_path.clear();
  options.ima_log_path.clear();
  options.include_ek_certificate = false;
  uint64_t before = ctx->stats().commands;
  auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    auto nonce = rand_for(i);
    auto t0 = Clock::now();
    must(attestation::collect_evidence(*ctx, ak, nonce, options), "evidence");
    s.us.push_back(micros(Clock::now() - t0));
  }
  s.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  commands_per_evidence = static_cast<double>(ctx->stats().commands - before) / static_cast<double>(n);
  return s;
}

// UmtsAuthenticate through mcimd: `callers` threads, each on its own bus connection and its own
// IND slot (TS 33.102 Annex C lets the network use several in parallel).
Stats over_dbus(test::McimdInstance& mcimd, std::size_t callers, std::size_t per_caller, uint64_t& seq_base) {
  Stats s{"UmtsAuthenticate over D-Bus, " + std::to_string(callers) + " caller(s)", {}, 0};
  std::mutex mutex;
  std::string address = mcimd.bus_env().at("DBUS_SYSTEM_BUS_ADDRESS");
  auto base = seq_base;
  seq_base += per_caller + 1;
  auto worker = [&](std::size_t caller) {
    auto network = must(OpenSslAes::create(kK), "AES key");
    sd_bus* bus = nullptr;
    if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address.c_str()) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
        sd_bus_start(bus) < 0)
      die("cannot connect to the bus");
    std::vector<double> mine;
    for (std::size_t i = 0; i < per_caller; ++i) {
      uint64_t sqn = ((base + i) << 5) | caller;  // SEQ ‖ IND with 5 IND bits
      auto v = must(generate_vector(network, kOpc, rand_for(sqn), sqn_from_u64(sqn), Amf{0x80, 0}), "vector");
      sd_bus_message* reply = nullptr;
      sd_bus_error error = SD_BUS_ERROR_NULL;
      auto t0 = Clock::now();
      sd_bus_message* call = nullptr;
      sd_bus_message_new_method_call(bus, &call, "org.mcimd.Tre1", "/org/mcimd/Tre1/Profile/0",
                                     "org.mcimd.Tre1.USimApplication", "UmtsAuthenticate");
      sd_bus_message_append_array(call, 'y', v.rand.data(), v.rand.size());
      sd_bus_message_append_array(call, 'y', v.autn.data(), v.autn.size());
      int r = sd_bus_call(bus, call, 30'000'000, &error, &reply);
      mine.push_back(micros(Clock::now() - t0));
      sd_bus_message_unref(call);
      if (r < 0) die(std::string("UmtsAuthenticate failed: ") + (error.message ? error.message : strerror(-r)));
      const void* res = nullptr;
      size_t res_size = 0;
      // a{say}: the first entry is RES on success, AUTS on a sync failure.
      if (sd_bus_message_enter_container(reply, 'a', "{say}") < 0 || sd_bus_message_enter_container(reply, 'e', "say") < 0)
        die("malformed UmtsAuthenticate reply");
      const char* key = nullptr;
      sd_bus_message_read(reply, "s", &key);
      sd_bus_message_read_array(reply, 'y', &res, &res_size);
      if (std::string(key) != "RES") die(std::string("UmtsAuthenticate answered ") + key + ", not RES");
      sd_bus_message_unref(reply);
      sd_bus_error_free(&error);
    }
    sd_bus_flush_close_unref(bus);
    std::lock_guard lock(mutex);
    s.us.insert(s.us.end(), mine.begin(), mine.end());
  };
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < callers; ++c) threads.emplace_back(worker, c);
  for (auto& t : threads) t.join();
  s.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return s;
}

// Writes swtpm makes to its NV state file (tpm2-00.permall) while `work` runs.
std::size_t nv_state_writes(const std::filesystem::path& state_dir, const std::function<void()>& work) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0 || inotify_add_watch(fd, state_dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
    die("inotify on " + state_dir.string() + ": " + strerror(errno));
  std::size_t writes = 0;
  auto drain = [&] {
    alignas(inotify_event) char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        if (e->len && std::string_view(e->name).starts_with("tpm2-00.permall")) ++writes;
        p += sizeof(inotify_event) + e->len;
      }
    }
  };
  work();
  drain();
  close(fd);
  return writes;
}

test::McimdInstance& started(test::McimdInstance& mcimd) {
  if (!mcimd.start()) die("mcimd did not start:\n" + mcimd.log());
  auto yaml = mcimd.dir() / "profile.yaml";
  std::ofstream(yaml) << test::kDemoProfileYaml;
  auto r = mcimd.mcimctl({"install", yaml.string()});
  std::filesystem::remove(yaml);
  if (r.exit_code != 0) die("install failed: " + r.err);
  return mcimd;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t scale = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--scale" && i + 1 < argc) scale = std::max(1, std::atoi(argv[++i]));
    else die(std::string("unknown argument ") + argv[i] + " (usage: mcimd-bench [--scale N])");
  }
  std::vector<Stats> rows;
  std::cerr << "software baseline…\n";
  rows.push_back(software(2000 * scale));
  std::cerr << "systemd-creds decrypt…\n";
  for (auto& s : systemd_creds(40 * scale)) rows.push_back(std::move(s));

  test::CommandLog counted;
  std::size_t counted_akas = 20;
  {
    std::cerr << "counting the daemon's TPM commands…\n";
    test::McimdOptions options;
    options.pcrs = "sha256:7";
    options.log_tpm_commands = true;
    test::McimdInstance mcimd(options);
    started(mcimd);
    uint64_t seq = 2;
    over_dbus(mcimd, 1, 2, seq);  // warm: K loaded, OPc unsealed
    std::size_t mark = mcimd.tpm().log_mark();
    over_dbus(mcimd, 1, counted_akas, seq);
    counted = mcimd.tpm().commands_since(mark);
  }

  std::size_t nv_akas = 300 * scale, nv_writes = 0;
  {
    std::cerr << "daemon over D-Bus…\n";
    test::McimdOptions options;
    options.pcrs = "sha256:7";
    test::McimdInstance mcimd(options);
    started(mcimd);
    uint64_t seq = 2;
    over_dbus(mcimd, 1, 2, seq);  // warm
    rows.push_back(over_dbus(mcimd, 1, 100 * scale, seq));
    rows.push_back(over_dbus(mcimd, 4, 25 * scale, seq));
    std::cerr << "NV writes over " << nv_akas << " AKAs…\n";
    nv_writes = nv_state_writes(mcimd.tpm().state_dir() / "state", [&] { over_dbus(mcimd, 1, nv_akas, seq); });
  }
  double evidence_commands = 0;
  std::cerr << "evidence in-process…\n";
  rows.push_back(evidence_inprocess(20 * scale, evidence_commands));

  double base_p50 = rows[0].pct(0.5);
  std::printf("\n| path | runs | p50 (µs) | p99 (µs) | per second | p50 vs software AKA |\n|---|---:|---:|---:|---:|---:|\n");
  for (auto& s : rows)
    std::printf("| %s | %zu | %.1f | %.1f | %.1f | %.0f× |\n", s.name.c_str(), s.ops(), s.pct(0.5), s.pct(0.99),
                static_cast<double>(s.ops()) / s.wall_s, s.pct(0.5) / base_p50);
  std::printf("\nTPM commands per AKA through mcimd, counted at swtpm over %zu AKAs: %.1f (%s)\n", counted_akas,
              static_cast<double>(counted.codes.size()) / static_cast<double>(counted_akas), counted.summary().c_str());
  std::printf("NV state writes by swtpm over %zu AKAs through mcimd: %zu\n", nv_akas, nv_writes);
  std::printf("TPM commands per evidence document, in-process: %.1f\n", evidence_commands);
  return 0;
}
