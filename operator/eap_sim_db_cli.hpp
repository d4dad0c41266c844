#pragma once
// mcim-operator eap-sim-db: the authentication centre of one subscriber for hostapd's EAP-SIM,
// EAP-AKA and EAP-AKA' server (hostapd.conf eap_sim_db=unix:PATH), serving the requests of
// operator/eap_sim_db.hpp on a UNIX datagram socket until SIGTERM or SIGINT.
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace mcimd::op {

class EapSimDbCommands {
 public:
  explicit EapSimDbCommands(CLI::App& app);
  ~EapSimDbCommands();
  EapSimDbCommands(const EapSimDbCommands&) = delete;
  EapSimDbCommands& operator=(const EapSimDbCommands&) = delete;

  std::vector<std::string> names() const;
  // Runs the subcommand app parsed, nullopt when it was none of these. Log lines go to `err`,
  // one a request, each flushed.
  std::optional<int> run(std::ostream& out, std::ostream& err);

 private:
  struct Options;
  std::unique_ptr<Options> o_;
};

}  // namespace mcimd::op
