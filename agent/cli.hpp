#pragma once
// mcimd-agent's command line: options (CLI11), the configuration, one provisioning run, progress
// on standard error, an optional final JSON line on standard output, and the exit status
// (failure.hpp's ExitCode). main.cpp only calls run().
#include <iosfwd>

namespace mcimd::agent {

int run(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace mcimd::agent
