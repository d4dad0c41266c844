#include "tests/support/mcimd_instance.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>

namespace mcimd::test {

const char* kSet1K = "465b5ce8b199b49faa5f0a2ee238a6bc";
const char* kSet1Opc = "cd63cb71954a9f4e48a5994e37a02baf";
const char* kDemoProfileYaml = R"(iccid: "8949001234567890123"
imsi: "001010123456789"
operator: "00101"
k: 465b5ce8b199b49faa5f0a2ee238a6bc
opc: cd63cb71954a9f4e48a5994e37a02baf
amf: "8000"
sqn:
  initial: "000000000020"
  ind-bits: 5
)";

const char* kBootstrapProfileYaml = R"(iccid: "8949009999999999990"
imsi: "001019999999999"
operator: "00101"
class: bootstrap
k: 000102030405060708090a0b0c0d0e0f
opc: 0f0e0d0c0b0a09080706050403020100
amf: "8000"
sqn:
  initial: "000000000020"
  ind-bits: 5
)";

McimdOptions with_operator(const std::filesystem::path& anchors, const std::string& operator_id) {
  McimdOptions o;
  o.extra_config = "provisioning:\n  operators:\n    - id: \"" + operator_id + "\"\n      anchors: " + anchors.string() + "\n";
  return o;
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::filesystem::path binary(const std::string& relative) { return std::filesystem::path(MCIMD_BINARY_DIR) / relative; }

namespace {
std::vector<std::string> as_user(std::optional<uid_t> uid, std::vector<std::string> argv) {
  if (!uid) return argv;
  std::vector<std::string> out = {"setpriv", "--reuid=" + std::to_string(*uid), "--regid=" + std::to_string(*uid),
                                  "--clear-groups"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}
}  // namespace

McimdInstance::McimdInstance(const McimdOptions& options)
    : tpm_(SwtpmOptions{options.provision_ek_certificates, options.log_tpm_commands}),
      pcrs_(options.pcrs),
      approve_at_start_(options.approve_at_start), daemon_env_(options.daemon_env) {
  auto keygen = operator_tool({"pcr-policy", "keygen", "--out", authority_key().string(), "--public-out",
                               authority_public().string()});
  if (keygen.exit_code != 0) throw std::runtime_error("mcim-operator pcr-policy keygen failed: " + keygen.err);
  config_ = dir_.path() / "mcimd.yaml";
  std::ofstream out(config_);
  out << "store: " << store().string() << "\n"
      << "log-level: debug\n"
      << "tpm:\n  tcti: " << tpm_.tcti() << "\n  require-resource-manager: false\n  pcrs: sha256:7\n  allow-resettable-pcrs: " << (options.allow_resettable_pcrs ? "true" : "false")
      << "\n  policy-authority: " << authority_public().string()
      << "\n  key-protection: " << options.key_protection << "\n"
      << "access:\n  modem-users: [1000]\n  admin-users: [0]\n"
      << options.extra_config;
}

std::filesystem::path McimdInstance::sign_current_pcrs(const std::string& pcrs, const std::string& name) {
  auto read = tpm2({"tpm2_pcrread", pcrs});
  if (read.exit_code != 0) throw std::runtime_error("tpm2_pcrread failed: " + read.err);
  auto values = dir_.path() / (name + ".pcrs.yaml");
  std::ofstream(values) << read.out;
  auto policy = dir_.path() / (name + ".json");
  // The instance's own throwaway authority: it may sign PCR 16, which tests extend on demand.
  auto signed_policy = operator_tool({"pcr-policy", "sign", "--key", authority_key().string(), "--pcrread",
                                      values.string(), "--out", policy.string(), "--allow-resettable-pcrs"});
  if (signed_policy.exit_code != 0) throw std::runtime_error("mcim-operator pcr-policy sign failed: " + signed_policy.err);
  return policy;
}

RunResult McimdInstance::approve_current_pcrs(const std::string& pcrs) {
  return mcimctl({"policy", "add", sign_current_pcrs(pcrs).string()});
}

McimdInstance::~McimdInstance() {
  if (daemon_) daemon_->stop(SIGTERM, std::chrono::seconds(15));
}

RunResult McimdInstance::install_profile(const std::string& yaml) {
  const auto file = dir_.path() / "profile.yaml";
  std::ofstream(file) << yaml;
  auto r = mcimctl({"install", file.string()});
  std::filesystem::remove(file);  // it holds K: a factory does not leave it behind either
  return r;
}

std::map<std::string, std::string> McimdInstance::bus_env() const {
  return {{"DBUS_SYSTEM_BUS_ADDRESS", bus_.address()}, {"TPM2TOOLS_TCTI", tpm_.tcti()}};
}

bool McimdInstance::start() {
  auto env = bus_env();
  env.insert(daemon_env_.begin(), daemon_env_.end());
  daemon_ = std::make_unique<Process>(ProcessOptions{{binary("daemon/mcimd").string(), "--config", config_.string()},
                                                     env,
                                                     log_file(),
                                                     log_file()});
  bool up = wait_until(
                [&] {
                  if (!daemon_->running()) return true;
                  return mcimctl({"list"}).exit_code == 0;
                },
                std::chrono::seconds(30)) &&
            daemon_->running();
  // The first start gets the policy for the platform as it is; later starts keep it.
  if (up && approve_at_start_ && !approved_once_) {
    auto added = approve_current_pcrs();
    if (added.exit_code != 0) throw std::runtime_error("mcimctl policy add failed: " + added.err + added.out);
    approved_once_ = true;
  }
  return up;
}

int McimdInstance::stop() {
  if (!daemon_) return -1;
  auto st = daemon_->stop(SIGTERM, std::chrono::seconds(15));
  daemon_.reset();
  if (st && WIFEXITED(*st)) return WEXITSTATUS(*st);
  return -1;
}

void McimdInstance::kill() {
  if (!daemon_) return;
  daemon_->stop(SIGKILL, std::chrono::seconds(15));
  daemon_.reset();
  for (const char* what : {"--loaded-session", "--transient-object"}) {
    auto r = tpm2({"tpm2_flushcontext", what});
    if (r.exit_code != 0) throw std::runtime_error(std::string("tpm2_flushcontext ") + what + ": " + r.err);
  }
}

int McimdInstance::wait_exit(std::chrono::milliseconds timeout) {
  if (!daemon_) return -1;
  auto st = daemon_->wait(timeout);
  if (!st) return -1;
  daemon_.reset();
  return WIFEXITED(*st) ? WEXITSTATUS(*st) : 128 + WTERMSIG(*st);
}

RunResult McimdInstance::mcimctl(const std::vector<std::string>& args, std::optional<uid_t> as_uid) {
  std::vector<std::string> argv = {binary("tools/mcimctl").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(as_user(as_uid, argv), bus_env());
}

RunResult McimdInstance::busctl(const std::vector<std::string>& args, std::optional<uid_t> as_uid) {
  std::vector<std::string> argv = {"busctl", "--address=" + bus_.address()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(as_user(as_uid, argv), bus_env());
}

RunResult McimdInstance::operator_tool(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {binary("operator/mcim-operator").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

RunResult McimdInstance::tpm2(const std::vector<std::string>& argv) { return run(argv, bus_env()); }

std::string McimdInstance::log() const {
  std::ifstream in(dir_.path() / "mcimd.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Challenge make_challenge(McimdInstance& m, const std::string& sqn_hex) {
  return make_challenge(m, sqn_hex, kSet1K, kSet1Opc);
}

Challenge make_challenge(McimdInstance& m, const std::string& sqn_hex, const std::string& k, const std::string& opc) {
  static std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
           static_cast<unsigned long long>(rng()));
  Challenge c;
  c.rand = buf;
  auto r = m.operator_tool({"milenage", "--k", k, "--opc", opc, "--rand", c.rand, "--sqn", sqn_hex, "--amf",
                            "8000", "--json"});
  if (r.exit_code != 0) throw std::runtime_error("mcim-operator failed: " + r.err);
  auto j = nlohmann::json::parse(r.out);
  c.autn = j.at("autn");
  c.xres = j.at("res");
  c.ck = j.at("ck");
  c.ik = j.at("ik");
  return c;
}

}  // namespace mcimd::test
