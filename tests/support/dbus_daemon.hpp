#pragma once
// A private dbus-daemon for one test, listening on a unix socket in its own directory.
// By default its policy lets everyone own and call (so mcimd's own caller checks are what
// is tested); extra_config adds <include> or <policy> elements, e.g. the shipped policy file.
#include <memory>
#include <string>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace mcimd::test {

struct DbusDaemonOptions {
  bool allow_all = true;
  std::string extra_config;  // XML inserted into <busconfig>
};

class DbusDaemon {
 public:
  explicit DbusDaemon(const DbusDaemonOptions& options = {});
  ~DbusDaemon();
  // "unix:path=/…/bus" for DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS.
  const std::string& address() const { return address_; }

 private:
  TempDir dir_;
  std::string address_;
  std::unique_ptr<Process> proc_;
};

}  // namespace mcimd::test
