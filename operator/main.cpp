// mcim-operator: the reference operator's command line; the work is in mcimd-operator-lib.
#include <iostream>

#include "operator/cli.hpp"

int main(int argc, char** argv) { return mcimd::op::run_cli(argc, argv, std::cout, std::cerr); }
