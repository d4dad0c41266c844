// mcimctl: administer and query mcimd over D-Bus. See `mcimctl --help`.
#include <iostream>

#include "tools/cli.hpp"

int main(int argc, char** argv) { return mcimd::ctl::run(argc, argv, std::cout, std::cerr); }
