#pragma once
// mcim-operator subscription-add: a subscription the operator already sold (ICCID, IMSI, K, OPc)
// put in the registry and the AuC, so that a subscriber can link a gateway to it (the agent's
// `subscription:`) and get exactly those credentials provisioned.
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace mcimd::op {

class SubscriptionCommands {
 public:
  explicit SubscriptionCommands(CLI::App& app);
  ~SubscriptionCommands();
  SubscriptionCommands(const SubscriptionCommands&) = delete;
  SubscriptionCommands& operator=(const SubscriptionCommands&) = delete;

  std::vector<std::string> names() const;
  // Runs the subcommand app parsed, nullopt when it was none of these.
  std::optional<int> run(std::ostream& out, std::ostream& err);

 private:
  struct Options;
  std::unique_ptr<Options> o_;
};

}  // namespace mcimd::op
