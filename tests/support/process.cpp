#include "tests/support/process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace mcimd::test {

namespace {

std::vector<std::string> merged_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, int out_fd,
            int err_fd) {
  if (argv.empty()) throw std::runtime_error("empty argv");
  auto envs = merged_env(env);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setpgid(0, 0);
    if (out_fd >= 0) dup2(out_fd, 1);
    if (err_fd >= 0) dup2(err_fd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execvpe(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  return pid;
}

int open_out(const std::optional<std::filesystem::path>& p) {
  if (!p) return -1;
  return open(p->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Process::Process(const ProcessOptions& options) {
  int out = open_out(options.stdout_file), err = open_out(options.stderr_file);
  pid_ = spawn(options.argv, options.env, out, err);
  if (out >= 0) close(out);
  if (err >= 0) close(err);
}

Process::Process(Process&& other) noexcept : pid_(other.pid_), status_(other.status_) { other.pid_ = -1; }

Process::~Process() {
  if (pid_ > 0 && !status_) {
    if (!stop(SIGTERM, std::chrono::seconds(10))) stop(SIGKILL, std::chrono::seconds(5));
  }
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Process::running() { return !wait(std::chrono::milliseconds(0)); }

std::optional<int> Process::stop(int sig, std::chrono::milliseconds timeout) {
  if (status_) return status_;
  kill(pid_, sig);
  return wait(timeout);
}

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              std::chrono::milliseconds timeout) {
  char out_tmpl[] = "/tmp/mcimd-run-out.XXXXXX";
  char err_tmpl[] = "/tmp/mcimd-run-err.XXXXXX";
  int out = mkstemp(out_tmpl), err = mkstemp(err_tmpl);
  if (out < 0 || err < 0) throw std::runtime_error("mkstemp failed");
  close(out);
  close(err);
  RunResult result;
  {
    Process p(ProcessOptions{argv, env, std::filesystem::path(out_tmpl), std::filesystem::path(err_tmpl)});
    auto st = p.wait(timeout);
    if (!st) st = p.stop(SIGKILL);
    if (st && WIFEXITED(*st)) result.exit_code = WEXITSTATUS(*st);
    else if (st && WIFSIGNALED(*st)) result.exit_code = 128 + WTERMSIG(*st);
  }
  result.out = slurp(out_tmpl);
  result.err = slurp(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return result;
}

int free_port_pair() {
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = 20000 + static_cast<int>((getpid() * 7919u + attempt * 104729u) % 40000u);
    bool ok = true;
    for (int p : {port, port + 1}) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(p));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ok = false;
      close(fd);
    }
    if (ok) return port;
  }
  throw std::runtime_error("no free port pair found");
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace mcimd::test
