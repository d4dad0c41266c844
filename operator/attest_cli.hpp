#pragma once
// mcim-operator's enrolment, platform validation and policy subcommands:
//   enroll, enroll-finish   credential challenge against the EK, then the device's answer
//   challenge               a fresh nonce
//   verify, verify-report   remote and semi-autonomous validation of an enrolled device
//   policy-sign, policy-keygen   signed reference policies
//   qualifying-data         a quote domain's qualifying data, for tpm2_checkquote -q
// Exit codes as in cli.hpp: 1 when a check refused (each failed check listed with its reason),
// 2 for bad input (the message names the option).
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace mcimd::op {

class AttestationCommands {
 public:
  // Adds the subcommands to app.
  explicit AttestationCommands(CLI::App& app);
  ~AttestationCommands();
  AttestationCommands(const AttestationCommands&) = delete;
  AttestationCommands& operator=(const AttestationCommands&) = delete;

  std::vector<std::string> names() const;
  // Runs the subcommand app parsed, nullopt when it was none of these.
  std::optional<int> run(std::ostream& out, std::ostream& err);

 private:
  struct Options;
  std::unique_ptr<Options> o_;
};

}  // namespace mcimd::op
