#pragma once
// A private swtpm per test with a TPM context open on it. The test fails if it leaves a transient
// object or a session loaded beyond the context's kept sessions, in the context's own count, or
// anything in the TPM itself once the context is closed (swtpm has no resource manager to clean
// up after it, and only three slots of each).
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
      EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions());
    }
    ctx_.reset();
    EXPECT_EQ(getcap("handles-transient"), "");
    EXPECT_EQ(getcap("handles-loaded-session"), "");
  }

  void open(tpm::RetryPolicy retry = {}) {
    auto ctx = tpm::Context::open(tpm::ContextOptions{tpm_.tcti(), retry});
    ASSERT_TRUE(ctx) << ctx.error().describe();
    ctx_ = std::move(*ctx);
  }

  // tpm2-tools on the same swtpm. The swtpm TCTI connects once per command, so a tool's commands
  // interleave with an open context's, as they would with another client of a TPM without a
  // resource manager.
  RunResult tools(const std::vector<std::string>& argv) { return run(argv, {{"TPM2TOOLS_TCTI", tpm_.tcti()}}); }
  std::string getcap(const std::string& what) {
    auto r = tools({"tpm2_getcap", what});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
  void extend(unsigned pcr, uint8_t fill = 0x5A) {
    ASSERT_TRUE(ctx_->pcr_extend(pcr, "sha256", Bytes(32, fill)));
  }

  TempDir dir_;
  Swtpm tpm_;
  std::unique_ptr<tpm::Context> ctx_;
};

}  // namespace mcimd::test
