#include "tests/support/swtpm.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace mcimd::test {

namespace {
bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}
}  // namespace

Swtpm::Swtpm() : Swtpm(SwtpmOptions{}) {}

Swtpm::Swtpm(const SwtpmOptions& options) {
  if (options.provision_ek_certificates) provision();
  port_ = free_port_pair();
  tcti_ = "swtpm:host=127.0.0.1,port=" + std::to_string(port_);
  start();
}

Swtpm::~Swtpm() {
  if (proc_) proc_->stop(SIGTERM);
}

void Swtpm::start() {
  auto state = dir_.path() / "state";
  std::filesystem::create_directories(state);
  proc_ = std::make_unique<Process>(ProcessOptions{
      {"swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + state.string(), "--server",
       "type=tcp,port=" + std::to_string(port_) + ",bindaddr=127.0.0.1", "--ctrl",
       "type=tcp,port=" + std::to_string(port_ + 1) + ",bindaddr=127.0.0.1", "--flags",
       "not-need-init,startup-clear", "--log", "file=" + (dir_.path() / "swtpm.log").string()},
      {},
      std::nullopt,
      dir_.path() / "swtpm.err"});
  // Probe the control port only: a connection to the server port would be taken as the
  // (single) client.
  if (!wait_until([&] { return port_open(port_ + 1); }, std::chrono::seconds(10)))
    throw std::runtime_error("swtpm did not start on port " + std::to_string(port_));
}

std::filesystem::path Swtpm::local_ca_root_certificate() {
  return "/var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem";
}

std::filesystem::path Swtpm::local_ca_issuer_certificate() { return "/var/lib/swtpm-localca/issuercert.pem"; }

void Swtpm::provision() {
  auto state = dir_.path() / "state";
  std::filesystem::create_directories(state);
  // --pcr-banks -: keep every bank allocated, as an unprovisioned swtpm has them.
  auto r = run({"swtpm_setup", "--tpm2", "--tpmstate", state.string(), "--create-ek-cert", "--create-platform-cert",
                "--pcr-banks", "-", "--logfile", (dir_.path() / "swtpm_setup.log").string()},
               {}, std::chrono::seconds(120));
  if (r.exit_code != 0)
    throw std::runtime_error("swtpm_setup failed (exit " + std::to_string(r.exit_code) + "): " + r.err + r.out);
}

void Swtpm::restart() {
  proc_->stop(SIGTERM);
  proc_.reset();
  start();
}

}  // namespace mcimd::test
