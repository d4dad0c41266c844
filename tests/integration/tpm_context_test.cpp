// The TPM context against a private swtpm: opening, the SRK, PCRs, the NV counter, retries.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/swtpm.hpp"
#include "tpm/esys_libctx.hpp"
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
      EXPECT_EQ(ctx_->live_handles(), ctx_->kept_sessions());
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

  // tpm2-tools on the same swtpm: the swtpm TCTI connects once per command, so a tool's commands
  // interleave with the open context's, as another client's would.
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
  EXPECT_TRUE(ctx.error().has_tss2_rc());
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
  // An object created and loaded under it (RSA SRK: the salt travels RSA-OAEP encrypted).
  auto blob = ctx_->create_aes_key(Bytes(16, 3), SealOptions{Bytes(32, 0), true});
  ASSERT_TRUE(blob) << blob.error().describe();
  auto key = ctx_->load_aes_key(*blob);
  ASSERT_TRUE(key) << key.error().describe();
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
const CounterSpec& spec() {
  static const CounterSpec s{kCounterIndex, SecureBytes(32, 0x5c)};
  return s;
}

TEST_F(TpmTest, CounterIsAnOrderlyCounterOnlyItsAuthHolderCanRead) {
  ASSERT_TRUE(ctx_->counter_define(spec()));
  auto first = ctx_->counter_read(spec());
  ASSERT_TRUE(first) << first.error().describe();
  auto reread = ctx_->counter_read(spec());
  ASSERT_TRUE(reread);
  EXPECT_EQ(*reread, *first) << "reading a written counter does not change it";
  uint64_t last = *first;
  for (int i = 0; i < 5; ++i) {
    auto next = ctx_->counter_increment(spec());
    ASSERT_TRUE(next) << next.error().describe();
    EXPECT_EQ(*next, last + 1);
    last = *next;
  }
  EXPECT_EQ(*ctx_->counter_read(spec()), last);
  auto defined_again = ctx_->counter_define(spec());
  ASSERT_FALSE(defined_again);
  EXPECT_EQ(defined_again.error().code, Code::AlreadyExists);

  auto pub = tool({"tpm2_nvreadpublic", "0x01004d43"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_NE(pub.out.find("nt=0x1"), std::string::npos) << pub.out;  // TPM_NT_COUNTER
  for (const char* attribute : {"no_da", "orderly", "authread", "authwrite"})
    EXPECT_NE(pub.out.find(attribute), std::string::npos) << attribute << " in " << pub.out;
  EXPECT_EQ(pub.out.find("ownerwrite"), std::string::npos) << pub.out;
  EXPECT_EQ(pub.out.find("ppwrite"), std::string::npos) << pub.out;
}

// The attack: any TPM user advanced the counter with tpm2_nvincrement and the store could never
// be opened again. Now the index takes only its own auth, which only mcimd knows.
TEST_F(TpmTest, AnotherProcessCannotAdvanceTheCounter) {
  ASSERT_TRUE(ctx_->counter_define(spec()));
  auto before = ctx_->counter_read(spec());
  ASSERT_TRUE(before);
  // Each refused by the TPM for its authorisation (Part 2 §6.6): TPM_RC_BAD_AUTH for the index's
  // own auth (empty or guessed; NO_DA), TPM_RC_NV_AUTHORIZATION for the owner's.
  auto plain = tool({"tpm2_nvincrement", "0x01004d43"});
  EXPECT_NE(plain.exit_code, 0) << "tpm2_nvincrement without the auth was accepted";
  EXPECT_NE(plain.err.find("0x000009a2"), std::string::npos) << plain.err;
  auto owner = tool({"tpm2_nvincrement", "-C", "o", "0x01004d43"});
  EXPECT_NE(owner.exit_code, 0) << "tpm2_nvincrement with owner auth was accepted";
  EXPECT_NE(owner.err.find("0x00000149"), std::string::npos) << owner.err;
  auto guessed = tool({"tpm2_nvincrement", "-P", "hex:" + std::string(64, '0'), "0x01004d43"});
  EXPECT_NE(guessed.exit_code, 0) << "tpm2_nvincrement with a wrong auth was accepted";
  EXPECT_NE(guessed.err.find("0x000009a2"), std::string::npos) << guessed.err;
  ctx_->drop_sessions();  // forget the cached value: ask the TPM
  auto after = ctx_->counter_read(spec());
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_EQ(*after, *before);
  CounterSpec wrong{kCounterIndex, SecureBytes(32, 0x00)};
  auto refused = ctx_->counter_increment(wrong);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::NotAuthorized);
  // The same tool with the counter's own auth does advance it.
  auto with_auth = tool({"tpm2_nvincrement", "-P", "hex:" + to_hex(Bytes(spec().auth.begin(), spec().auth.end())),
                         "0x01004d43"});
  ASSERT_EQ(with_auth.exit_code, 0) << with_auth.err;
  ctx_->drop_sessions();
  auto advanced = ctx_->counter_read(spec());
  ASSERT_TRUE(advanced) << advanced.error().describe();
  EXPECT_EQ(*advanced, *before + 1);
}

// An interposer on the bus alters the TPM's answer: the response HMAC no longer verifies.
TEST_F(TpmTest, ACounterValueAlteredOnTheWayIsRefused) {
  ASSERT_TRUE(ctx_->counter_define(spec()));
  ASSERT_TRUE(ctx_->counter_increment(spec()));
  ctx_->drop_sessions();
  // TPM2_NV_Read response: header (10) ‖ parameterSize (4) ‖ TPM2B size (2) ‖ the 8 value bytes.
  seam::inject_response(*ctx_, {0, 1, seam::kCcNvRead, std::size_t{10 + 4 + 2 + 7}});
  auto read = ctx_->counter_read(spec());
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::TpmFailure);
  EXPECT_NE(read.error().message.find("failed authentication"), std::string::npos) << read.error().message;
  // ESAPI keeps nothing usable after such an answer: the context is reopened, and the session it
  // could no longer flush is flushed by hand (a resource manager would do that on close).
  EXPECT_NE(ctx_->counter_read(spec()).error().message.find("reopen the TPM context"), std::string::npos);
  ctx_ = open();
  ASSERT_EQ(tool({"tpm2_flushcontext", "-l"}).exit_code, 0);
  auto honest = ctx_->counter_read(spec());
  ASSERT_TRUE(honest) << honest.error().describe();
}

TEST_F(TpmTest, CounterIncrementCostsOneCommandInSteadyState) {
  ASSERT_TRUE(ctx_->counter_define(spec()));
  ASSERT_TRUE(ctx_->counter_read(spec()));
  auto before = ctx_->stats().commands;
  auto v = ctx_->counter_increment(spec());
  ASSERT_TRUE(v);
  EXPECT_EQ(ctx_->stats().commands - before, 1u);
  ctx_->drop_sessions();
  auto read = ctx_->counter_read(spec());
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, *v) << "the cached value is the TPM's";
}

TEST_F(TpmTest, CounterStartsNewSessionWhenAnotherClientFlushedIt) {
  ASSERT_TRUE(ctx_->counter_define(spec()));
  auto first = ctx_->counter_read(spec());
  ASSERT_TRUE(first);
  ASSERT_EQ(tool({"tpm2_flushcontext", "-l"}).exit_code, 0);
  ASSERT_EQ(getcap("handles-loaded-session"), "") << "the counter's session is gone";
  auto next = ctx_->counter_increment(spec());
  ASSERT_TRUE(next) << next.error().describe();
  EXPECT_EQ(*next, *first + 1);
}

TEST_F(TpmTest, CounterSurvivesAPowerCycleAndNeverGoesBackAfterAnUncleanOne) {
  ASSERT_TRUE(ctx_->counter_define(spec()));
  ASSERT_TRUE(ctx_->counter_read(spec()));
  auto value = ctx_->counter_increment(spec());
  ASSERT_TRUE(value);
  ctx_.reset();
  tpm_.restart();  // no TPM2_Shutdown: an unclean power cycle for an orderly counter
  ctx_ = open();
  auto after = ctx_->counter_read(spec());
  ASSERT_TRUE(after) << after.error().describe();
  EXPECT_GE(*after, *value);
  EXPECT_LE(*after - *value, 256u) << "an orderly counter moves on by less than MAX_ORDERLY_COUNT + 1";
  // What the store's rollback window relies on: the TPM sets the low bits (MAX_ORDERLY_COUNT) to ones.
  EXPECT_EQ(*after % 256, 255u) << *value << " came back as " << *after;
  auto next = ctx_->counter_increment(spec());
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, *after + 1);
}

TEST_F(TpmTest, CounterRefusesAnIndexOfAnotherKind) {
  auto defined = tool({"tpm2_nvdefine", "0x01004d43", "-C", "o", "-s", "8", "-a", "ownerread|ownerwrite|authread|authwrite"});
  ASSERT_EQ(defined.exit_code, 0) << defined.err;
  auto read = ctx_->counter_read(spec());
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::InvalidState);
  EXPECT_NE(read.error().message.find("not a counter"), std::string::npos) << read.error().message;
  EXPECT_EQ(ctx_->counter_increment(spec()).error().code, Code::InvalidState);
}

TEST_F(TpmTest, CounterThatIsNotDefinedIsNotFoundAndCanBeUndefined) {
  EXPECT_EQ(ctx_->counter_read(spec()).error().code, Code::NotFound);
  EXPECT_EQ(ctx_->counter_undefine(kCounterIndex).error().code, Code::NotFound);
  ASSERT_TRUE(ctx_->counter_define(spec()));
  ASSERT_TRUE(ctx_->counter_read(spec()));
  ASSERT_TRUE(ctx_->counter_undefine(kCounterIndex));
  EXPECT_EQ(ctx_->counter_read(spec()).error().code, Code::NotFound);
}

TEST_F(TpmTest, CounterRefusesAHandleThatIsNoNvIndexOrAnEmptyAuth) {
  auto read = ctx_->counter_read(CounterSpec{0x81000001, SecureBytes(8, 1)});
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::InvalidArgument);
  EXPECT_EQ(ctx_->counter_define(CounterSpec{kCounterIndex, {}}).error().code, Code::InvalidArgument);
}

TEST_F(TpmTest, RetriesWhileTheTpmRateLimitsNvWrites) {
  ASSERT_TRUE(ctx_->counter_define(spec()));
  auto first = ctx_->counter_read(spec());
  ASSERT_TRUE(first);
  seam::inject_response(*ctx_, {seam::kRcNvRate, 2, seam::kCcNvIncrement, std::nullopt});
  auto started = std::chrono::steady_clock::now();
  auto next = ctx_->counter_increment(spec());
  ASSERT_TRUE(next) << next.error().describe();
  EXPECT_EQ(*next, *first + 1);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(300))
      << "two rate-limited answers: 100 ms then 200 ms of back-off";
}

TEST_F(TpmTest, ReadsTheClock) {
  auto clock = ctx_->read_clock();
  ASSERT_TRUE(clock) << clock.error().describe();
  ctx_.reset();
  tpm_.restart();
  ctx_ = open();
  auto after = ctx_->read_clock();
  ASSERT_TRUE(after);
  EXPECT_GT(after->reset_count, clock->reset_count) << "a power cycle is a TPM Reset";
}

// --- retries, through the transport's injected answers ----------------------------------------------------
TEST_F(TpmTest, RetriesCommandsTheTpmAsksToRetry) {
  seam::inject_response(*ctx_, {seam::kRcRetry, 3, seam::kCcPcrRead, std::nullopt});
  auto read = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_TRUE(read) << read.error().describe();
  EXPECT_EQ(ctx_->stats().commands, 1u) << "answered commands never reach the TPM";
}

TEST_F(TpmTest, RetriesBeyondEsapisOwnResubmissionsWithBackoff) {
  // ESAPI resubmits a few times by itself; eight in a row are more than it gets past alone...
  ctx_ = open(RetryPolicy{1, std::chrono::milliseconds(1)});
  seam::inject_response(*ctx_, {seam::kRcTesting, 8, 0, std::nullopt});
  auto alone = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_FALSE(alone) << "eight TPM_RC_TESTING answers were not all given";
  EXPECT_EQ(alone.error().tss2_rc(), seam::kRcTesting) << alone.error().describe();
  // ...and need our retries as well.
  ctx_ = open(RetryPolicy{3, std::chrono::milliseconds(1)});
  seam::inject_response(*ctx_, {seam::kRcTesting, 8, 0, std::nullopt});
  auto read = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_TRUE(read) << read.error().describe();
}

TEST_F(TpmTest, GivesUpAfterTheConfiguredAttemptsAndStaysUsable) {
  ctx_ = open(RetryPolicy{1, std::chrono::milliseconds(1)});
  seam::inject_response(*ctx_, {seam::kRcRetry, 8, 0, std::nullopt});
  auto read = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::TpmFailure);
  EXPECT_EQ(read.error().tss2_rc(), seam::kRcRetry);
  EXPECT_EQ(read.error().message.rfind("Failed to read PCRs sha256:0: ", 0), 0u) << read.error().message;
  seam::inject_response(*ctx_, {0, 0, 0, std::nullopt});
  EXPECT_TRUE(ctx_->pcr_read(PcrSelection{"sha256", {0}}));
}

TEST_F(TpmTest, AsksToBeReopenedAfterTheTransportFailed) {
  ASSERT_TRUE(ctx_->pcr_read(PcrSelection{"sha256", {0}}));
  seam::inject_response(*ctx_, {seam::kTctiIoError, 1, 0, std::nullopt});
  auto lost = ctx_->pcr_read(PcrSelection{"sha256", {0}});
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, Code::TpmFailure);
  auto later = ctx_->counter_read(spec());
  ASSERT_FALSE(later);
  EXPECT_NE(later.error().message.find("reopen the TPM context"), std::string::npos) << later.error().message;
  ctx_ = open();
  EXPECT_TRUE(ctx_->pcr_read(PcrSelection{"sha256", {0}}));
}

// tpm2-tss 3.2 would make a new OpenSSL library context for every hash of a session; linked with
// esys_libctx, as mcimd is, it gets one.
TEST_F(TpmTest, SessionsHashInOneOpenSslLibraryContext) {
  const auto before = openssl_library_contexts_created();
  SecureBytes auth(32, 0x11);
  ASSERT_TRUE(ctx_->counter_define(CounterSpec{kCounterIndex, auth}));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ctx_->counter_increment(CounterSpec{kCounterIndex, auth}));
  EXPECT_LE(openssl_library_contexts_created() - before, 1u)
      << "salted sessions, HMACs and parameter encryption over a dozen commands";
}
