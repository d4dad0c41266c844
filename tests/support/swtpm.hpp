#pragma once
// A private swtpm (TPM 2.0) for one test: absolute state directory, a free port pair on
// 127.0.0.1, started with startup-clear, stopped and removed at scope end.
#include <memory>
#include <string>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace mcimd::test {

class Swtpm {
 public:
  Swtpm();
  ~Swtpm();
  // "swtpm:host=127.0.0.1,port=N" for tss2-tctildr and TPM2TOOLS_TCTI.
  const std::string& tcti() const { return tcti_; }
  int port() const { return port_; }
  const std::filesystem::path& state_dir() const { return dir_.path(); }
  // Stops and starts swtpm again on the same state (a power cycle: PCRs reset, NV kept).
  void restart();

 private:
  void start();
  TempDir dir_;
  int port_ = 0;
  std::string tcti_;
  std::unique_ptr<Process> proc_;
};

}  // namespace mcimd::test
