#pragma once
// The mcim-operator command line: `milenage` computes what the network sends for a challenge,
// `auts` recovers SQN_MS from a synchronisation failure. Scripts playing the network call these.
// Enrolment, platform validation and signed policies are in attest_cli.hpp.
#include <ostream>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace mcimd::op {

// Exit codes of mcim-operator.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the inputs were well-formed but a check failed (MAC-S, a quote, an activation)
inline constexpr int kExitUsage = 2;    // bad command line: message names the option

// For the subcommands: "mcim-operator: OPTION: MESSAGE" on err, returning kExitUsage.
int option_error(std::ostream& err, std::string_view option, const std::string& message);
// "mcim-operator: Failed to WHAT: CODE: MESSAGE" on err, returning kExitFailure.
int step_failed(std::ostream& err, std::string_view what, const Error& error);

// Parses argv and runs the subcommand, writing results to `out` and messages to `err`. Never
// throws; returns one of the exit codes above.
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace mcimd::op
