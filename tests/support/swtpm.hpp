#pragma once
// A private swtpm (TPM 2.0) for one test: absolute state directory, a free port pair on
// 127.0.0.1, started with startup-clear, stopped and removed at scope end.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace mcimd::test {

struct SwtpmOptions {
  // Manufacture the state first with `swtpm_setup --create-ek-cert --create-platform-cert`: EK
  // certificates signed by swtpm-localca in their NV indices (swtpm 0.7: RSA-2048 at 0x01c00002,
  // ECC NIST P-384 at 0x01c00016; none for the P-256 template L-2), the EKs persisted at
  // 0x81010001/0x81010016, a platform certificate at 0x01c08000. All PCR banks stay allocated.
  bool provision_ek_certificates = false;
  // Log every command swtpm receives (--log level=20): what commands() reads back.
  bool log_commands = false;
};

// The command codes (TPM 2.0 Part 2 §6.5.2) of the commands swtpm received, in order.
struct CommandLog {
  std::vector<uint32_t> codes;
  std::size_t count(uint32_t code) const;
  std::string summary() const;  // "PolicyPCR ×3, ..." in order of first appearance
};

class Swtpm {
 public:
  Swtpm();
  explicit Swtpm(const SwtpmOptions& options);
  ~Swtpm();
  // The swtpm-localca CA that signs provisioned EK certificates (swtpm_setup creates it on first
  // use, per /etc/swtpm-localca.conf): the self-signed root, and the intermediate that signs.
  static std::filesystem::path local_ca_root_certificate();
  static std::filesystem::path local_ca_issuer_certificate();
  // "swtpm:host=127.0.0.1,port=N" for tss2-tctildr and TPM2TOOLS_TCTI.
  const std::string& tcti() const { return tcti_; }
  int port() const { return port_; }
  const std::filesystem::path& state_dir() const { return dir_.path(); }
  // Stops and starts swtpm again on the same state (a power cycle: PCRs reset, NV kept).
  void restart();
  // The TPM gone (swtpm stopped), and back on the same state (a power cycle).
  void stop();
  void start_again();
  // With log_commands: the commands received since `mark` (a position in the log), and the
  // position now. Start with mark 0 or the mark of an earlier call.
  CommandLog commands_since(std::size_t& mark) const;
  std::size_t log_mark() const;

 private:
  // Starts swtpm on port_ and port_ + 1 and returns once this swtpm listens on both. When it
  // exits instead (another program took a port meanwhile) and `may_move` (the first start: nobody
  // knows the port yet), it tries again on other ports.
  void start(bool may_move = false);
  void provision();
  bool log_commands_ = false;
  TempDir dir_;
  int port_ = 0;
  std::string tcti_;
  std::unique_ptr<Process> proc_;
};

}  // namespace mcimd::test
