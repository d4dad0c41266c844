// mcimd-bench: what one AKA costs on the TPM and through the daemon over D-Bus, each against
// software Milenage measured in the same run (ratios, not absolute numbers, are what compare
// across machines). Starts its own swtpm, dbus-daemon and mcimd.
//
//   mcimd-bench [--scale N]    N multiplies the iteration counts (default 1)
#include <systemd/sd-bus.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
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

struct TpmCounts {
  double commands_per_aka = 0;
  double encrypt_decrypt_per_aka = 0;
};

// The daemon's per-AKA TPM work, in-process: open, SRK, unseal OPc, load K, Milenage, NV increment.
Stats tpm_inprocess(std::size_t n, TpmCounts& counts) {
  Stats s{"TPM-held K (swtpm), in-process", {}, 0};
  test::Swtpm swtpm;
  tpm::ContextOptions opts;
  opts.tcti = swtpm.tcti();
  auto pcrs = must(tpm::parse_pcr_selection("sha256:7"), "pcrs");
  tpm::KeyBlob k_blob, opc_blob;
  {
    auto ctx = must(tpm::Context::open(opts), "open");
    must(ctx->srk_public(), "srk");
    k_blob = must(ctx->create_aes_key(kK, tpm::SealOptions{pcrs, true}), "create K");
    opc_blob = must(ctx->seal(kOpc, tpm::SealOptions{pcrs, true}), "seal OPc");
    must(ctx->counter_read(0x01004d43), "counter");
  }
  auto network = must(OpenSslAes::create(kK), "AES key");
  auto sqns = must(SqnArray::create(SqnParameters{}), "SQN array");
  uint64_t commands = 0, ed = 0;
  auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    auto v = must(generate_vector(network, kOpc, rand_for(i), sqn_from_u64(0x20 * (i + 1)), Amf{0x80, 0}), "vector");
    auto t0 = Clock::now();
    auto ctx = must(tpm::Context::open(opts), "open");
    must(ctx->srk_public(), "srk");
    auto opc_secret = must(ctx->unseal(opc_blob, pcrs), "unseal");
    Block opc{};
    std::copy(opc_secret.begin(), opc_secret.end(), opc.begin());
    {
      auto key = must(ctx->load_aes_key(k_blob, pcrs), "load K");
      struct Cipher : BlockCipher {
        tpm::Context::AesKey& key;
        explicit Cipher(tpm::Context::AesKey& k) : key(k) {}
        Result<std::vector<Block>> encrypt(std::span<const Block> b) override { return key.encrypt_ecb(b); }
      } cipher(key);
      auto out = must(usim_authenticate(cipher, opc, sqns, v.rand, v.autn), "usim");
      if (!std::holds_alternative<UmtsSuccess>(out)) die("TPM AKA refused a fresh vector");
    }
    must(ctx->counter_increment(0x01004d43), "counter");
    s.us.push_back(micros(Clock::now() - t0));
    commands += ctx->stats().commands;
    ed += ctx->stats().encrypt_decrypt;
  }
  s.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  counts.commands_per_aka = static_cast<double>(commands) / static_cast<double>(n);
  counts.encrypt_decrypt_per_aka = static_cast<double>(ed) / static_cast<double>(n);
  return s;
}

// Device-side evidence: read PCRs, quote, re-read, over every allocated bank, PCRs 0–23.
Stats evidence_inprocess(std::size_t n, double& commands_per_evidence) {
  Stats s{"evidence (quote, all banks, PCRs 0-23), in-process", {}, 0};
  test::Swtpm swtpm;
  tpm::ContextOptions opts;
  opts.tcti = swtpm.tcti();
  tpm::KeyBlob ak;
  {
    auto ctx = must(tpm::Context::open(opts), "open");
    ak = must(ctx->create_ak(), "create AK");
  }
  attestation::EvidenceOptions options;
  options.event_log_path.clear();
  options.ima_log_path.clear();
  options.include_ek_certificate = false;
  uint64_t commands = 0;
  auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    auto nonce = rand_for(i);
    auto t0 = Clock::now();
    auto ctx = must(tpm::Context::open(opts), "open");
    must(attestation::collect_evidence(*ctx, ak, nonce, options), "evidence");
    s.us.push_back(micros(Clock::now() - t0));
    commands += ctx->stats().commands;
  }
  s.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  commands_per_evidence = static_cast<double>(commands) / static_cast<double>(n);
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
  TpmCounts counts;
  std::cerr << "TPM in-process…\n";
  rows.push_back(tpm_inprocess(40 * scale, counts));
  double evidence_commands = 0;
  std::cerr << "evidence in-process…\n";
  rows.push_back(evidence_inprocess(20 * scale, evidence_commands));
  {
    std::cerr << "daemon over D-Bus…\n";
    test::McimdInstance mcimd(test::McimdOptions{"sha256:7", "tpm-aes", "", {}});
    if (!mcimd.start()) die("mcimd did not start:\n" + mcimd.log());
    auto yaml = mcimd.dir() / "profile.yaml";
    std::ofstream(yaml) << test::kDemoProfileYaml;
    auto r = mcimd.mcimctl({"install", yaml.string()});
    if (r.exit_code != 0) die("install failed: " + r.err);
    uint64_t seq = 2;
    rows.push_back(over_dbus(mcimd, 1, 40 * scale, seq));
    rows.push_back(over_dbus(mcimd, 4, 10 * scale, seq));
  }
  double base_p50 = rows[0].pct(0.5);
  std::printf("\n| path | AKAs | p50 (µs) | p99 (µs) | AKA/s | p50 vs software |\n|---|---:|---:|---:|---:|---:|\n");
  for (auto& s : rows)
    std::printf("| %s | %zu | %.1f | %.1f | %.1f | %.0f× |\n", s.name.c_str(), s.ops(), s.pct(0.5), s.pct(0.99),
                static_cast<double>(s.ops()) / s.wall_s, s.pct(0.5) / base_p50);
  std::printf("\nTPM commands per AKA: %.1f (of which TPM2_EncryptDecrypt2: %.1f)\n", counts.commands_per_aka,
              counts.encrypt_decrypt_per_aka);
  std::printf("TPM commands per evidence: %.1f\n", evidence_commands);
  return 0;
}
