#pragma once
// What the mcim-store unit tests share: a file-backed generation counter and SQN arrays.
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

#include "aka/sqn.hpp"
#include "mcim-store/store.hpp"

namespace mcimd::test {

// The TPM NV counter stand-in. Its value lives in a file, so that it survives reopening the store
// and increments made by a child process, as a TPM's would. Plain writes: a test's hook on the
// store's atomic writes sees only the store's own.
class FileCounter final : public store::GenerationCounter {
 public:
  explicit FileCounter(std::filesystem::path path, uint64_t initial = 1000) : path_(std::move(path)) {
    if (!std::filesystem::exists(path_)) set(initial);
  }
  Result<uint64_t> read() override { return value(); }
  Result<uint64_t> increment() override {
    if (fail_increments > 0) {
      --fail_increments;
      return fail(Code::TpmFailure, "increment refused by the test");
    }
    set(value() + 1);
    return value();
  }
  uint64_t value() const {
    std::ifstream in(path_);
    uint64_t v = 0;
    in >> v;
    return v;
  }
  void set(uint64_t v) { std::ofstream(path_, std::ios::trunc) << v; }
  int fail_increments = 0;  // how many of the next increments fail

 private:
  std::filesystem::path path_;
};

// A fresh SQN array with the default parameters, seeded at sqn.
inline aka::SqnArray sqns_at(uint64_t sqn) {
  auto a = aka::SqnArray::create(aka::SqnParameters{});
  if (!a) throw std::runtime_error(a.error().describe());
  a->seed(sqn);
  return std::move(*a);
}

}  // namespace mcimd::test
