#pragma once
// A private swtpm per test with a TPM context open on it. The test fails if it leaves a transient
// object or a session loaded, in the context's own count or in the TPM itself (swtpm has no
// resource manager to clean up after it, and only three slots of each).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tests/support/temp_dir.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::test {

class TpmContextTest : public ::testing::Test {
 protected:
  explicit TpmContextTest(SwtpmOptions options = {}) : tpm_(options) {}

  void SetUp() override { open(); }

  void TearDown() override {
    if (ctx_) {
      EXPECT_EQ(ctx_->live_handles(), 0u);
    }
    ctx_.reset();
    EXPECT_EQ(tools({"tpm2_getcap", "handles-transient"}).out, "");
    EXPECT_EQ(tools({"tpm2_getcap", "handles-loaded-session"}).out, "");
  }

  void open() {
    auto ctx = tpm::Context::open(tpm::ContextOptions{tpm_.tcti(), {}});
    ASSERT_TRUE(ctx) << ctx.error().describe();
    ctx_ = std::move(*ctx);
  }

  // tpm2-tools on the same swtpm. Only one client at a time: a tool that needs the TPM runs with
  // the context closed.
  RunResult tools(const std::vector<std::string>& argv) { return run(argv, {{"TPM2TOOLS_TCTI", tpm_.tcti()}}); }

  TempDir dir_;
  Swtpm tpm_;
  std::unique_ptr<tpm::Context> ctx_;
};

}  // namespace mcimd::test
