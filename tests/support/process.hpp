#pragma once
// Child processes for integration tests: started with an argv and environment additions,
// terminated (SIGTERM, then SIGKILL) when the owner goes out of scope.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mcimd::test {

struct ProcessOptions {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;   // added to / overriding the test's environment
  std::optional<std::filesystem::path> stdout_file;  // default: inherit
  std::optional<std::filesystem::path> stderr_file;
};

class Process {
 public:
  explicit Process(const ProcessOptions& options);
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&&) = delete;
  Process(const Process&) = delete;
  pid_t pid() const { return pid_; }
  bool running();
  // Sends sig and waits up to timeout; returns the exit status as from waitpid, or nullopt on timeout.
  std::optional<int> stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs a command to completion (timeout kills it), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A TCP port on 127.0.0.1 that was free a moment ago (and the next one: swtpm uses two).
int free_port_pair();

// Polls pred every 20 ms until true or timeout.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

}  // namespace mcimd::test
