#pragma once
// mcim-operator's remote provisioning subcommands:
//   serve   the provisioning service over HTTPS with client authentication (operator/server.hpp)
//   batch   packages for a factory's enrolment records, resumable (operator/batch.hpp)
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace mcimd::op {

class ProvisioningCommands {
 public:
  explicit ProvisioningCommands(CLI::App& app);
  ~ProvisioningCommands();
  ProvisioningCommands(const ProvisioningCommands&) = delete;
  ProvisioningCommands& operator=(const ProvisioningCommands&) = delete;

  std::vector<std::string> names() const;
  // Runs the subcommand app parsed, nullopt when it was none of these.
  std::optional<int> run(std::ostream& out, std::ostream& err);

 private:
  struct Options;
  int run_batch(std::ostream& out, std::ostream& err);
  std::unique_ptr<Options> o_;
};

}  // namespace mcimd::op
