#pragma once
// A whole mcimd for one integration test: its own swtpm, private dbus-daemon, store and
// config, plus helpers that drive it through mcimctl, busctl and mcim-operator.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/dbus_daemon.hpp"
#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"

namespace mcimd::test {

std::filesystem::path binary(const std::string& relative);  // under MCIMD_BINARY_DIR

struct McimdOptions {
  // The PCRs the instance's signed policy approves (start() adds one for their current values).
  // PCR 16 lets a test move the platform state with tpm2_pcrextend; it is resettable, so the
  // config allows resettable PCRs.
  std::string pcrs = "sha256:7,16";
  std::string key_protection = "tpm-aes";
  std::string extra_config;  // appended to the generated YAML
  std::map<std::string, std::string> daemon_env;  // e.g. NOTIFY_SOCKET, WATCHDOG_USEC
  bool log_tpm_commands = false;  // swtpm logs every command it receives (Swtpm::commands_since)
  // Add a policy (of the instance's own authority) for the current values of `pcrs` at the
  // first start.
  bool approve_at_start = true;
  bool allow_resettable_pcrs = true;
  bool provision_ek_certificates = false;  // swtpm_setup with EK certificates (SwtpmOptions)
};

class McimdInstance {
 public:
  explicit McimdInstance(const McimdOptions& options = {});
  ~McimdInstance();

  // Starts mcimd and waits until it answers on the bus; false if it exited instead.
  bool start();
  // SIGTERM and wait; returns the exit status code (or -1).
  int stop();
  // SIGKILL: the daemon dies wherever it is, as in a crash. Then its sessions and loaded objects
  // are flushed from swtpm, as the kernel's resource manager (/dev/tpmrm0) does when a process
  // dies: without one a dead process's handles stay in the TPM's few slots (docs/operations.md).
  void kill();
  int wait_exit(std::chrono::milliseconds timeout);
  // The running daemon's pid (for SIGSTOP/SIGCONT: a daemon that answers late); -1 when stopped.
  pid_t pid() const { return daemon_ ? daemon_->pid() : -1; }

  RunResult mcimctl(const std::vector<std::string>& args, std::optional<uid_t> as_uid = {});
  RunResult busctl(const std::vector<std::string>& args, std::optional<uid_t> as_uid = {});
  RunResult operator_tool(const std::vector<std::string>& args);
  // `mcimctl install` of a profile YAML, whose file (it holds K) is removed afterwards; the
  // profile's object path is the first line of out.
  RunResult install_profile(const std::string& yaml);
  RunResult tpm2(const std::vector<std::string>& argv);  // tpm2-tools against the same swtpm

  // The policy authority (keys made with `mcim-operator pcr-policy keygen`): signs the current
  // values of `pcrs` (tpm2_pcrread, `mcim-operator pcr-policy sign`) into a policy file.
  std::filesystem::path sign_current_pcrs(const std::string& pcrs, const std::string& name = "policy");
  // The same, then `mcimctl policy add`; the result of that.
  RunResult approve_current_pcrs(const std::string& pcrs);
  RunResult approve_current_pcrs() { return approve_current_pcrs(pcrs_); }
  std::filesystem::path authority_key() const { return dir_.path() / "authority.key"; }
  std::filesystem::path authority_public() const { return dir_.path() / "authority.pem"; }

  std::map<std::string, std::string> bus_env() const;
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path store() const { return dir_.path() / "store"; }
  std::filesystem::path log_file() const { return dir_.path() / "mcimd.log"; }
  std::string log() const;
  Swtpm& tpm() { return tpm_; }

 private:
  Swtpm tpm_;
  DbusDaemon bus_;
  TempDir dir_;
  std::filesystem::path config_;
  std::string pcrs_;
  bool approve_at_start_ = true;
  bool approved_once_ = false;
  std::map<std::string, std::string> daemon_env_;
  std::unique_ptr<Process> daemon_;
};

// Network side: a fresh RAND and the vector for (K, OPc, SQN) of TS 35.208 set 1.
struct Challenge {
  std::string rand, autn, xres, ck, ik;
};
Challenge make_challenge(McimdInstance& m, const std::string& sqn_hex);
// The same for other credentials (32 hex digits each).
Challenge make_challenge(McimdInstance& m, const std::string& sqn_hex, const std::string& k, const std::string& opc);

// Options for an instance that accepts MCIM packages of one operator (provisioning.operators),
// whose package signers chain to the CA certificate(s) in `anchors`.
McimdOptions with_operator(const std::filesystem::path& anchors, const std::string& operator_id = "00101");
// A whole file as text ("" when it cannot be read).
std::string slurp(const std::filesystem::path& path);

extern const char* kBootstrapProfileYaml;  // class bootstrap, ICCID 8949009999999999990, operator 00101
extern const char* kDemoProfileYaml;  // ICCID 8949001234567890123, TS 35.208 set 1 K/OPc
extern const char* kSet1K;
extern const char* kSet1Opc;

}  // namespace mcimd::test
