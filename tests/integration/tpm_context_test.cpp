// The TPM context against a private swtpm: opening, the SRK, PCRs, the NV counter, retries.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tpm/testing.hpp"
#include "tpm/tpm.hpp"

using namespace mcimd;
using namespace mcimd::tpm;

namespace {

constexpr uint32_t kCounterIndex = 0x01004d43;

// Every test gets its own swtpm and context; a test fails if it leaves a transient object or a
// session loaded, in the context's own count or in the TPM itself (swtpm has no resource manager
// to clean up after us, and only three slots of each).
class TpmTest : public ::testing::Test {
 protected:
  void SetUp() override { ctx_ = open(); }

  void TearDown() override {
    if (ctx_) {
      EXPECT_EQ(ctx_->live_handles(), 0u);
    }
    ctx_.reset();
    EXPECT_EQ(getcap("handles-transient"), "");
    EXPECT_EQ(getcap("handles-loaded-session"), "");
  }

  std::unique_ptr<Context> open(RetryPolicy retry = {}) {
    auto ctx = Context::open(ContextOptions{tpm_.tcti(), retry});
    if (!ctx) ADD_FAILURE() << ctx.error().describe();
    return ctx ? std::move(*ctx) : nullptr;
  }

  // tpm2-tools on the same swtpm; only one client at a time, so the context must be closed.
  test::RunResult tool(std::vector<std::string> argv) {
    return test::run(argv, {{"TPM2TOOLS_TCTI", tpm_.tcti()}});
  }
  std::string getcap(const std::string& what) {
    auto r = tool({"tpm2_getcap", what});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  test::Swtpm tpm_;
  std::unique_ptr<Context> ctx_;
};

Bytes sha256(const Bytes& data) {
  Bytes out(32);
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

Bytes extended(const Bytes& old, const Bytes& digest) {
  Bytes both = old;
  both.insert(both.end(), digest.begin(), digest.end());
  return sha256(both);
}

}  // namespace

// --- opening -----------------------------------------------------------------------------------------
TEST(AContext, ReportsAnUnknownTctiReadably) {
  auto ctx = Context::open(ContextOptions{"no-such-tcti:whatever", {}});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, Code::TpmFailure);
  EXPECT_EQ(ctx.error().message.rfind("Failed to open the TPM transport 'no-such-tcti:whatever': ", 0), 0u)
      << ctx.error().message;
  EXPECT_TRUE(ctx.error().tss2_rc);
}

TEST(AContext, ReportsAnUnreachableTpmReadably) {
  auto ctx = Context::open(ContextOptions{"swtpm:host=127.0.0.1,port=1", {}});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, Code::TpmFailure);
  EXPECT_NE(ctx.error().message.find("Failed to open the TPM transport"), std::string::npos) << ctx.error().message;
}

TEST(AContext, RefusesZeroRetryAttempts) {
  auto ctx = Context::open(ContextOptions{"swtpm:host=127.0.0.1,port=1", RetryPolicy{0, {}}});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, Code::InvalidArgument);
}

// --- SRK -----------------------------------------------------------------------------------------------
TEST_F(TpmTest, CreatesTheSrkOnceAndFindsTheSamePublicAfterReopenAndPowerCycle) {
  auto first = ctx_->srk_public();
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_GT(first->size(), 64u);
  EXPECT_EQ(ctx_->live_handles(), 0u);
  auto before = ctx_->stats().commands;
  auto cached = ctx_->srk_public();
  ASSERT_TRUE(cached);
  EXPECT_EQ(*cached, *first);
  EXPECT_EQ(ctx_->stats().commands, before) << "the SRK is looked up once per context";

  ctx_ = open();
  auto again = ctx_->srk_public();
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(*again, *first);

  ctx_.reset();
  auto persistent = getcap("handles-persistent");
  EXPECT_EQ(persistent, "- 0x81000001\n");
  auto pub = tool({"tpm2_readpublic", "-c", "0x81000001"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_NE(pub.out.find("value: ecc"), std::string::npos) << pub.out;
  EXPECT_NE(pub.out.find("NIST p256"), std::string::npos) << pub.out;
  EXPECT_NE(pub.out.find("restricted"), std::string::npos) << pub.out;
  EXPECT_NE(pub.out.find("noda"), std::string::npos) << pub.out;

  tpm_.restart();
  ctx_ = open();
  auto after = ctx_->srk_public();
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_EQ(*after, *first);
  ctx_.reset();
  EXPECT_EQ(getcap("handles-persistent"), "- 0x81000001\n");
}

TEST_F(TpmTest, UsesAnSrkSomeoneElsePersistedFirst) {
  ctx_.reset();
  auto made = tool({"tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "rsa2048:aes128cfb", "-c",
                    (tpm_.state_dir() / "srk.ctx").string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto kept = tool({"tpm2_evictcontrol", "-C", "o", "-c", (tpm_.state_dir() / "srk.ctx").string(), "0x81000001"});
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  tool({"tpm2_flushcontext", "-t"});
  ctx_ = open();
  auto srk = ctx_->srk_public();
  ASSERT_TRUE(srk) << srk.error().describe();
  auto blob = ctx_->seal(Bytes{1, 2, 3}, SealOptions{});
  ASSERT_TRUE(blob) << blob.error().describe();
  auto back = ctx_->unseal(*blob, PcrSelection{});
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(Bytes(back->begin(), back->end()), (Bytes{1, 2, 3}));
}

TEST_F(TpmTest, RefusesAPersistentObjectThatIsNotAStorageKeyAsSrk) {
  ctx_.reset();
  auto made = tool({"tpm2_createprimary", "-C", "o", "-G", "ecc256:ecdsa", "-a",
                    "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign", "-c",
                    (tpm_.state_dir() / "sign.ctx").string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto kept = tool({"tpm2_evictcontrol", "-C", "o", "-c", (tpm_.state_dir() / "sign.ctx").string(), "0x81000001"});
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  tool({"tpm2_flushcontext", "-t"});
  ctx_ = open();
  auto srk = ctx_->srk_public();
  ASSERT_FALSE(srk);
  EXPECT_EQ(srk.error().code, Code::TpmFailure);
  EXPECT_NE(srk.error().message.find("not a storage key"), std::string::npos) << srk.error().message;
}

// --- PCRs ----------------------------------------------------------------------------------------------
TEST_F(TpmTest, ReadsAndExtendsPcrsInEveryBank) {
  struct Bank {
    const char* name;
    std::size_t size;
  };
  for (auto [bank, size] : {Bank{"sha1", 20}, Bank{"sha256", 32}, Bank{"sha384", 48}, Bank{"sha512", 64}}) {
    PcrSelection sel{bank, {16, 23}};
    auto before = ctx_->pcr_read(sel);
    ASSERT_TRUE(before) << before.error().describe();
    ASSERT_EQ(before->size(), 2u);
    EXPECT_EQ((*before)[0].index, 16u);
    EXPECT_EQ((*before)[0].digest, Bytes(size, 0));
    Bytes digest(size, 0xA5);
    ASSERT_TRUE(ctx_->pcr_extend(16, bank, digest)) << bank;
    auto after = ctx_->pcr_read(sel);
    ASSERT_TRUE(after);
    EXPECT_NE((*after)[0].digest, (*before)[0].digest) << bank;
    EXPECT_EQ((*after)[1].digest, (*before)[1].digest) << bank;
    EXPECT_EQ(ctx_->live_handles(), 0u);
  }
  // The sha256 result is the Part 1 extend: H(old || digest).
  auto now = ctx_->pcr_read(PcrSelection{"sha256", {16}});
  ASSERT_TRUE(now);
  EXPECT_EQ((*now)[0].digest, extended(Bytes(32, 0), Bytes(32, 0xA5)));
}

TEST_F(TpmTest, ReadsMoreThanEightPcrsInOrder) {
  Bytes digest(32, 0x11);
  ASSERT_TRUE(ctx_->pcr_extend(12, "sha256", digest));
  PcrSelection all{"sha256", {}};
  for (unsigned i = 0; i < 24; ++i) all.pcrs.push_back(i);
  auto values = ctx_->pcr_read(all);
  ASSERT_TRUE(values) << values.error().describe();
  ASSERT_EQ(values->size(), 24u);
  for (unsigned i = 0; i < 24; ++i) {
    EXPECT_EQ((*values)[i].index, i);
    Bytes expected = i == 12 ? extended(Bytes(32, 0), digest) : Bytes(32, (i >= 17 && i <= 22) ? 0xFF : 0x00);
    EXPECT_EQ((*values)[i].digest, expected) << "PCR " << i;
  }
}

TEST_F(TpmTest, RefusesBadExtendArgumentsWithoutAskingTheTpm) {
  auto before = ctx_->stats().commands;
  auto short_digest = ctx_->pcr_extend(16, "sha256", Bytes(20, 1));
  ASSERT_FALSE(short_digest);
  EXPECT_EQ(short_digest.error().code, Code::InvalidArgument);
  EXPECT_NE(short_digest.error().message.find("32 bytes, not 20"), std::string::npos);
  EXPECT_EQ(ctx_->pcr_extend(24, "sha256", Bytes(32, 1)).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->pcr_extend(16, "md5", Bytes(16, 1)).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->pcr_read(PcrSelection{"sha256", {24}}).error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->stats().commands, before);
}

TEST_F(TpmTest, ReportsAnInactivePcrBankAsUnsupported) {
  ctx_.reset();
  auto allocated = tool({"tpm2_pcrallocate", "sha1:all+sha256:all+sha384:none+sha512:none"});
  ASSERT_EQ(allocated.exit_code, 0) << allocated.err;
  tpm_.restart();  // a new allocation takes effect at the next power cycle
  ctx_ = open();
  auto read = ctx_->pcr_read(PcrSelection{"sha384", {7}});
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::Unsupported);
  EXPECT_NE(read.error().message.find("sha384 bank is not active"), std::string::npos) << read.error().message;
  EXPECT_TRUE(ctx_->pcr_read(PcrSelection{"sha256", {7}}));
}

// --- NV counter -----------------------------------------------------------------------------------------
TEST_F(TpmTest, CounterIsDefinedOnFirstReadAndThenOnlyGrows) {
  auto first = ctx_->counter_read(kCounterIndex);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_GE(*first, 1u);
  auto reread = ctx_->counter_read(kCounterIndex);
  ASSERT_TRUE(reread);
  EXPECT_EQ(*reread, *first) << "reading a written counter does not change it";
  uint64_t last = *first;
  for (int i = 0; i < 5; ++i) {
    auto next = ctx_->counter_increment(kCounterIndex);
    ASSERT_TRUE(next) << next.error().describe();
    EXPECT_EQ(*next, last + 1);
    last = *next;
  }
  EXPECT_EQ(*ctx_->counter_read(kCounterIndex), last);
  EXPECT_EQ(ctx_->live_handles(), 0u);

  ctx_.reset();
  auto pub = tool({"tpm2_nvreadpublic", "0x01004d43"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_NE(pub.out.find("nt=0x1"), std::string::npos) << pub.out;  // TPM_NT_COUNTER
  EXPECT_NE(pub.out.find("no_da"), std::string::npos) << pub.out;
  EXPECT_EQ(pub.out.find("orderly"), std::string::npos) << pub.out;
}

TEST_F(TpmTest, CounterIncrementedBeforeItWasReadStartsAboveZero) {
  auto first = ctx_->counter_increment(kCounterIndex + 1);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_GE(*first, 1u);
  EXPECT_EQ(*ctx_->counter_read(kCounterIndex + 1), *first);
}

TEST_F(TpmTest, CounterSurvivesAPowerCycle) {
  ASSERT_TRUE(ctx_->counter_read(kCounterIndex));
  auto value = ctx_->counter_increment(kCounterIndex);
  ASSERT_TRUE(value);
  ctx_.reset();
  tpm_.restart();
  ctx_ = open();
  auto after = ctx_->counter_read(kCounterIndex);
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_EQ(*after, *value);
  auto next = ctx_->counter_increment(kCounterIndex);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, *value + 1);
}

TEST_F(TpmTest, CounterRefusesAnIndexOfAnotherKind) {
  ctx_.reset();
  auto defined = tool({"tpm2_nvdefine", "0x01004d43", "-C", "o", "-s", "8", "-a", "ownerread|ownerwrite|authread|authwrite"});
  ASSERT_EQ(defined.exit_code, 0) << defined.err;
  ctx_ = open();
  auto read = ctx_->counter_read(kCounterIndex);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::InvalidState);
  EXPECT_NE(read.error().message.find("not a counter"), std::string::npos) << read.error().message;
  EXPECT_EQ(ctx_->counter_increment(kCounterIndex).error().code, Code::InvalidState);
}

TEST_F(TpmTest, CounterRefusesAHandleThatIsNoNvIndex) {
  auto read = ctx_->counter_read(0x81000001);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::InvalidArgument);
}

// --- retries, through the transport's injected answers ----------------------------------------------------
TEST_F(TpmTest, RetriesCommandsTheTpmAsksToRetry) {
  seam::inject_response(*ctx_, {seam::kRcRetry, 3, seam::kCcPcrRead});
  auto read = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_TRUE(read) << read.error().describe();
  EXPECT_EQ(ctx_->stats().commands, 1u) << "answered commands never reach the TPM";
}

TEST_F(TpmTest, RetriesBeyondEsapisOwnResubmissionsWithBackoff) {
  // ESAPI resubmits a few times by itself; eight in a row need our retries as well.
  ctx_ = open(RetryPolicy{3, std::chrono::milliseconds(1)});
  seam::inject_response(*ctx_, {seam::kRcTesting, 8, 0});
  auto read = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_TRUE(read) << read.error().describe();
}

TEST_F(TpmTest, GivesUpAfterTheConfiguredAttemptsAndStaysUsable) {
  ctx_ = open(RetryPolicy{1, std::chrono::milliseconds(1)});
  seam::inject_response(*ctx_, {seam::kRcRetry, 8, 0});
  auto read = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::TpmFailure);
  EXPECT_EQ(read.error().tss2_rc, seam::kRcRetry);
  EXPECT_EQ(read.error().message.rfind("Failed to read PCRs sha256:0: ", 0), 0u) << read.error().message;
  seam::inject_response(*ctx_, {0, 0, 0});
  EXPECT_TRUE(ctx_->pcr_read(PcrSelection{"sha256", {0}}));
}

TEST_F(TpmTest, AsksToBeReopenedAfterTheTransportFailed) {
  ASSERT_TRUE(ctx_->pcr_read(PcrSelection{"sha256", {0}}));
  seam::inject_response(*ctx_, {seam::kTctiIoError, 1, 0});
  auto lost = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, Code::TpmFailure);
  auto later = ctx_->counter_read(kCounterIndex);
  ASSERT_FALSE(later);
  EXPECT_NE(later.error().message.find("reopen the TPM context"), std::string::npos) << later.error().message;
  ctx_ = open();
  EXPECT_TRUE(ctx_->pcr_read(PcrSelection{"sha256", {0}}));
}
