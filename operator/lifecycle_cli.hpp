#pragma once
// mcim-operator's lifecycle subcommands (protocol/lifecycle.hpp):
//   release                   sign a release of a device's profile to another operator
//   command                   sign a remote lifecycle command for a device's profile
//   verify-deletion-receipt   check a device's deletion receipt with its AK and print its body
//   rekey                     build a re-key package: new K and OPc for an installed profile
//                             (operator/rekey_cli.hpp)
// Exit codes as in cli.hpp: 1 when a check refused the receipt, 2 for bad input (the message
// names the option, or the document's field).
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace mcimd::op {

class LifecycleCommands {
 public:
  explicit LifecycleCommands(CLI::App& app);
  ~LifecycleCommands();
  LifecycleCommands(const LifecycleCommands&) = delete;
  LifecycleCommands& operator=(const LifecycleCommands&) = delete;

  std::vector<std::string> names() const;
  // Runs the subcommand app parsed, nullopt when it was none of these.
  std::optional<int> run(std::ostream& out, std::ostream& err);

 private:
  struct Options;
  std::unique_ptr<Options> o_;
};

}  // namespace mcimd::op
