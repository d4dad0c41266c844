// mcimd-agent: the provisioning agent. See `mcimd-agent --help` and docs/operations.md.
#include <iostream>

#include "agent/cli.hpp"

int main(int argc, char** argv) { return mcimd::agent::run(argc, argv, std::cout, std::cerr); }
