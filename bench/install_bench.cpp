// install-bench: what installing an MCIM package costs in the real daemon (mcimd on swtpm, over
// D-Bus), against installing the same credentials from a factory profile in the same run
// (InstallProfile: K created in the TPM, OPc sealed). Also RequestPackage, which certifies the
// SRK and collects evidence. TPM commands are counted at the TPM, from swtpm's log of every
// command it received while the daemon answered.
//
//   install-bench [--runs N]   (default 20)
#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "common/bytes.hpp"
#include "operator/package_builder.hpp"
#include "protocol/provisioning.hpp"
#include "tests/support/mcimd_instance.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& message) {
  std::cerr << "install-bench: " << message << "\n";
  std::exit(1);
}

struct Row {
  std::string name;
  std::vector<double> ms;
  double commands = 0;  // TPM commands per run
  std::string summary;
  double pct(double p) const {
    auto v = ms;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
  }
};

class Bus {
 public:
  explicit Bus(const std::string& address) {
    if (sd_bus_new(&bus_) < 0 || sd_bus_set_address(bus_, address.c_str()) < 0 || sd_bus_set_bus_client(bus_, 1) < 0 ||
        sd_bus_start(bus_) < 0)
      die("cannot connect to the bus");
  }
  ~Bus() { sd_bus_flush_close_unref(bus_); }
  // Calls Manager.<method> with the message `fill` builds; returns the reply (caller unrefs).
  template <class Fill>
  sd_bus_message* call(const char* method, Fill fill) {
    sd_bus_message* m = nullptr;
    sd_bus_message_new_method_call(bus_, &m, "org.mcimd.Tre1", "/org/mcimd/Tre1", "org.mcimd.Tre1.Manager", method);
    fill(m);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call(bus_, m, 60'000'000, &error, &reply);
    sd_bus_message_unref(m);
    if (r < 0) die(std::string(method) + " failed: " + (error.message ? error.message : strerror(-r)));
    sd_bus_error_free(&error);
    return reply;
  }

 private:
  sd_bus* bus_ = nullptr;
};

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string iccid_for(std::size_t i, int base) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "89490%02d%012zu", base, i);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t runs = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else die(std::string("unknown argument ") + argv[i] + " (usage: install-bench [--runs N])");
  }
  test::TempDir pki_dir;
  test::TestPki pki("bench operator");
  const auto anchors = pki.write_root(pki_dir.path(), "root");
  auto signer_files = pki.document_signer().write(pki_dir.path(), "signer");
  auto signer = op::load_policy_signer({signer_files.key, signer_files.cert, {}});
  if (!signer) die(signer.error().message);

  test::McimdOptions options = test::with_operator(anchors);
  options.pcrs = "sha256:7";
  options.log_tpm_commands = true;
  test::McimdInstance mcimd(options);
  if (!mcimd.start()) die("mcimd did not start:\n" + mcimd.log());
  Bus bus(mcimd.bus_env().at("DBUS_SYSTEM_BUS_ADDRESS"));

  Row factory{"InstallProfile (factory: K created in the TPM, OPc sealed)", {}, 0, ""};
  Row request{"RequestPackage (SRK certified, evidence)", {}, 0, ""};
  Row install{"InstallPackage (checks, TPM2_Import ×2, commit, quoted receipt)", {}, 0, ""};
  test::CommandLog factory_log, request_log, install_log;

  for (std::size_t i = 0; i < runs; ++i) {
    // Factory install of a profile document, through the same daemon.
    const auto yaml = mcimd.dir() / "factory.yaml";
    std::ofstream(yaml, std::ios::trunc) << "iccid: \"" << iccid_for(i, 1) << "\"\nimsi: \"00101000000" << 1000 + i
                                         << "\"\noperator: \"00101\"\nk: " << test::kSet1K << "\nopc: " << test::kSet1Opc
                                         << "\namf: \"8000\"\n";
    std::size_t mark = mcimd.tpm().log_mark();
    int fd = open(yaml.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("cannot open " + yaml.string());
    auto t0 = Clock::now();
    sd_bus_message_unref(bus.call("InstallProfile", [&](sd_bus_message* m) { sd_bus_message_append(m, "h", fd); }));
    factory.ms.push_back(ms_since(t0));
    close(fd);
    auto log = mcimd.tpm().commands_since(mark);
    factory.commands += static_cast<double>(log.codes.size());
    factory.summary = log.summary();

    Bytes nonce(32);
    RAND_bytes(nonce.data(), 32);
    mark = mcimd.tpm().log_mark();
    t0 = Clock::now();
    sd_bus_message* reply = bus.call("RequestPackage", [&](sd_bus_message* m) {
      sd_bus_message_append(m, "s", "bench");
      sd_bus_message_append_array(m, 'y', nonce.data(), nonce.size());
    });
    request.ms.push_back(ms_since(t0));
    log = mcimd.tpm().commands_since(mark);
    request.commands += static_cast<double>(log.codes.size());
    request.summary = log.summary();
    const char* text = nullptr;
    sd_bus_message_read(reply, "s", &text);
    auto req = protocol::package_request_from_json(text ? text : "");
    sd_bus_message_unref(reply);
    if (!req) die("package request: " + req.error().message);

    op::McimCredentials mcim;
    mcim.iccid = iccid_for(i, 2);
    mcim.imsi = "00101000001" + std::to_string(1000 + i);
    auto k = from_hex(test::kSet1K, "K").value(), opc = from_hex(test::kSet1Opc, "OPc").value();
    mcim.k.assign(k.begin(), k.end());
    mcim.opc.assign(opc.begin(), opc.end());
    op::PackageOrder order;
    order.package_id = "bench-" + std::to_string(i);
    order.operator_id = "00101";
    order.counter = req->counter + 1;
    order.issued = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto built = op::build_package(*req, mcim, order, *signer);
    if (!built) die("build_package: " + built.error().message);

    mark = mcimd.tpm().log_mark();
    t0 = Clock::now();
    reply = bus.call("InstallPackage", [&](sd_bus_message* m) { sd_bus_message_append(m, "s", built->jws.c_str()); });
    install.ms.push_back(ms_since(t0));
    log = mcimd.tpm().commands_since(mark);
    install.commands += static_cast<double>(log.codes.size());
    install.summary = log.summary();
    sd_bus_message_unref(reply);
  }

  std::printf("\n| path (%zu runs, mcimd on swtpm over D-Bus) | p50 (ms) | p99 (ms) | TPM commands | p50 vs factory install |\n"
              "|---|---:|---:|---:|---:|\n",
              runs);
  for (auto* row : {&factory, &request, &install})
    std::printf("| %s | %.2f | %.2f | %.1f | %.2f× |\n", row->name.c_str(), row->pct(0.5), row->pct(0.99),
                row->commands / static_cast<double>(runs), row->pct(0.5) / factory.pct(0.5));
  std::printf("\nTPM commands of the last InstallPackage: %s\n", install.summary.c_str());
  std::printf("TPM commands of the last RequestPackage: %s\n", request.summary.c_str());
  std::printf("TPM commands of the last factory InstallProfile: %s\n", factory.summary.c_str());
  return 0;
}
