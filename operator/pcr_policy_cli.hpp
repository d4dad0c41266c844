#pragma once
// mcim-operator pcr-policy: the policy authority's side of signed PCR policies (the gateway
// vendor's or the operator's). `keygen` makes the authority's P-256 key, `sign` approves PCR
// values (given one by one or as tpm2_pcrread prints them), `show` checks and prints a policy.
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace mcimd::op {

class PcrPolicyCommands {
 public:
  explicit PcrPolicyCommands(CLI::App& app);
  ~PcrPolicyCommands();
  PcrPolicyCommands(const PcrPolicyCommands&) = delete;
  PcrPolicyCommands& operator=(const PcrPolicyCommands&) = delete;

  std::vector<std::string> names() const;
  // Runs the subcommand app parsed, nullopt when it was none of these.
  std::optional<int> run(std::ostream& out, std::ostream& err);

 private:
  struct Options;
  std::unique_ptr<Options> o_;
};

}  // namespace mcimd::op
