#include "tests/support/swtpm.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace mcimd::test {

namespace {

// The inodes of the TCP sockets listening on 127.0.0.1:port in this network namespace.
std::set<std::string> listening_inodes(int port) {
  std::set<std::string> inodes;
  std::ifstream in("/proc/net/tcp");
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", port);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local_address, remote_address, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local_address >> remote_address >> state >> queues >> timer >> retransmits >> uid >> timeout >>
        inode;
    if (local_address == local && state == "0A") inodes.insert(inode);  // 0A: TCP_LISTEN
  }
  return inodes;
}

// Whether process `pid` itself listens on 127.0.0.1:port: readiness without connecting (swtpm
// takes a connection to its server port as its one client), and not fooled by another program
// on the same port.
bool listens(pid_t pid, int port) {
  const auto inodes = listening_inodes(port);
  if (inodes.empty()) return false;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).native();
    if (!ec && target.starts_with("socket:[") && target.ends_with("]") &&
        inodes.count(target.substr(8, target.size() - 9)))
      return true;
  }
  return false;
}

}  // namespace

Swtpm::Swtpm() : Swtpm(SwtpmOptions{}) {}

Swtpm::Swtpm(const SwtpmOptions& options) : log_commands_(options.log_commands) {
  if (options.provision_ek_certificates) provision();
  port_ = free_port_pair();
  start(/*may_move=*/true);
}

Swtpm::~Swtpm() {
  if (proc_) proc_->stop(SIGTERM);
}

void Swtpm::start(bool may_move) {
  auto state = dir_.path() / "state";
  std::filesystem::create_directories(state);
  for (int attempt = 1;; ++attempt) {
    tcti_ = "swtpm:host=127.0.0.1,port=" + std::to_string(port_);
    proc_ = std::make_unique<Process>(ProcessOptions{
        {"swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + state.string(), "--server",
         "type=tcp,port=" + std::to_string(port_) + ",bindaddr=127.0.0.1", "--ctrl",
         "type=tcp,port=" + std::to_string(port_ + 1) + ",bindaddr=127.0.0.1", "--flags",
         "not-need-init,startup-clear", "--log",
         "file=" + (dir_.path() / "swtpm.log").string() + (log_commands_ ? ",level=20" : "")},
        {},
        std::nullopt,
        dir_.path() / "swtpm.err"});
    const pid_t pid = proc_->pid();
    const bool ready = wait_until([&] { return !proc_->running() || (listens(pid, port_) && listens(pid, port_ + 1)); },
                                  std::chrono::seconds(20)) &&
                       proc_->running();
    if (ready) return;
    proc_->stop(SIGKILL);
    proc_.reset();
    std::ifstream err(dir_.path() / "swtpm.err");
    const std::string why((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    if (!may_move || attempt == 5)
      throw std::runtime_error("swtpm did not start on ports " + std::to_string(port_) + " and " +
                               std::to_string(port_ + 1) + ": " + why);
    port_ = free_port_pair();
  }
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

std::size_t CommandLog::count(uint32_t code) const { return static_cast<std::size_t>(std::count(codes.begin(), codes.end(), code)); }

std::string CommandLog::summary() const {
  static const std::map<uint32_t, const char*> names = {
      {0x17F, "PolicyPCR"},   {0x16A, "PolicyAuthorize"}, {0x193, "EncryptDecrypt2"}, {0x134, "NV_Increment"}, {0x149, "PolicyNV"},
      {0x14E, "NV_Read"},     {0x157, "Load"},            {0x15E, "Unseal"},          {0x165, "FlushContext"},
      {0x176, "StartAuthSession"}, {0x17E, "PCR_Read"},   {0x173, "ReadPublic"},      {0x169, "NV_ReadPublic"},
      {0x155, "HMAC"},        {0x17A, "GetCapability"},   {0x177, "VerifySignature"}, {0x167, "LoadExternal"},
      {0x154, "PolicyRestart"}, {0x181, "ReadClock"},     {0x158, "Quote"},           {0x153, "Create"},
      {0x182, "PCR_Extend"},   {0x156, "Import"},          {0x148, "Certify"}};
  std::vector<std::pair<uint32_t, std::size_t>> order;
  for (uint32_t c : codes) {
    auto it = std::find_if(order.begin(), order.end(), [&](auto& p) { return p.first == c; });
    if (it == order.end()) order.emplace_back(c, 1);
    else ++it->second;
  }
  std::string out;
  for (auto& [code, n] : order) {
    auto name = names.find(code);
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%03x", code);
    out += (out.empty() ? "" : ", ") + std::string(name == names.end() ? hex : name->second) + " x" + std::to_string(n);
  }
  return out;
}

std::size_t Swtpm::log_mark() const {
  std::error_code ec;
  auto size = std::filesystem::file_size(dir_.path() / "swtpm.log", ec);
  return ec ? 0 : static_cast<std::size_t>(size);
}

CommandLog Swtpm::commands_since(std::size_t& mark) const {
  if (!log_commands_) throw std::logic_error("swtpm was started without log_commands");
  std::ifstream in(dir_.path() / "swtpm.log", std::ios::binary);
  in.seekg(static_cast<std::streamoff>(mark));
  CommandLog log;
  std::string line;
  bool command_follows = false;
  // swtpm logs each received command as " SWTPM_IO_Read: length N" and then its bytes in hex,
  // sixteen to a line; the command code is bytes 6–9 of the header (Part 1 §18.2).
  while (std::getline(in, line)) {
    if (line.find("SWTPM_IO_Read:") != std::string::npos) {
      command_follows = true;
      continue;
    }
    if (!command_follows) continue;
    command_follows = false;
    std::istringstream bytes(line);
    std::vector<unsigned> b;
    std::string h;
    while (bytes >> h && b.size() < 10) b.push_back(static_cast<unsigned>(std::stoul(h, nullptr, 16)));
    if (b.size() >= 10) log.codes.push_back((b[6] << 24) | (b[7] << 16) | (b[8] << 8) | b[9]);
  }
  mark = log_mark();
  return log;
}

void Swtpm::stop() {
  if (proc_) proc_->stop(SIGTERM);
  proc_.reset();
}

void Swtpm::start_again() {
  if (!proc_) start();
}

void Swtpm::restart() {
  proc_->stop(SIGTERM);
  proc_.reset();
  start();
}

}  // namespace mcimd::test
