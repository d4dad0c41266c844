// Writes the provisioning fuzz target's seed corpus: package headers (Milenage, an algorithm
// with parameters, no subsidy lock) and a package request, each a document the parsers accept.
// Usage: fuzz_write_provisioning_seeds <corpus dir>/provisioning.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/fuzz/provisioning_fixtures.hpp"

using namespace mcimd;
namespace fixtures = mcimd::test::provisioning;

namespace {
void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>/provisioning\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const fixtures::Device device;
  auto header = fixtures::package_header(device);
  write(dir / "header.json", protocol::to_json(header));
  header.algorithm = "tuak";
  header.algorithm_parameters = R"({"keccak_iterations":1,"res_size":64})";
  header.rules.locked_until.reset();
  header.profile_class = "bootstrap";
  write(dir / "header-tuak.json", protocol::to_json(header));
  write(dir / "request.json", protocol::to_json(fixtures::package_request(device)));
  return 0;
}
