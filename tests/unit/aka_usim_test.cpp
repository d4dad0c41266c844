// USIM-side authentication (TS 33.102 §6.3.3): the order of the checks, the state each outcome
// leaves behind, AUTS on synchronisation failure, and the three cipher calls it may use.
#include <gtest/gtest.h>

#include <limits>

#include "aka/milenage.hpp"
#include "aka/sqn.hpp"
#include "aka/usim.hpp"
#include "common/bytes.hpp"

using namespace mcimd;
using namespace mcimd::aka;

namespace {

template <std::size_t N>
std::array<uint8_t, N> hex_array(std::string_view hex) {
  auto bytes = from_hex(hex, "test value", N);
  if (!bytes) throw std::runtime_error(bytes.error().describe());
  std::array<uint8_t, N> out;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// TS 35.208 test set 1.
const Block kK = hex_array<16>("465b5ce8b199b49faa5f0a2ee238a6bc");
const Block kOpc = hex_array<16>("cd63cb71954a9f4e48a5994e37a02baf");
const Rand kRand = hex_array<16>("23553cbe9637a89d218ae64dae47bf35");
const Sqn kSetSqn = hex_array<6>("ff9bb4d0b607");
const Amf kSetAmf = hex_array<2>("b9b9");
const Autn kSetAutn = hex_array<16>("55f328b43577b9b94a9ffac354dfafb3");
const Res kSetRes = hex_array<8>("a54211d5e3ba50bf");
const Block kSetCk = hex_array<16>("b40ba9a3c58b2a05bbf0d987b21bf8cb");
const Block kSetIk = hex_array<16>("f769bcd751044604127672711c6d3441");

constexpr unsigned kIndBits = 5;
uint64_t sqn(uint64_t seq, uint64_t ind) { return seq << kIndBits | ind; }

// Counts blocks per call on top of OpenSslAes and fails from a chosen call on, as a TPM might.
class CountingCipher final : public BlockCipher {
 public:
  explicit CountingCipher(std::size_t fail_from_call = std::numeric_limits<std::size_t>::max())
      : inner_(*OpenSslAes::create(kK)), fail_from_call_(fail_from_call) {}
  Result<std::vector<Block>> encrypt(std::span<const Block> blocks) override {
    calls_.push_back(blocks.size());
    if (calls_.size() >= fail_from_call_) return fail(Code::TpmFailure, "injected failure");
    return inner_.encrypt(blocks);
  }
  const std::vector<std::size_t>& calls() const { return calls_; }

 private:
  OpenSslAes inner_;
  std::size_t fail_from_call_;
  std::vector<std::size_t> calls_;
};

class AUsimAuthentication : public ::testing::Test {
 protected:
  void SetUp() override {
    auto aes = OpenSslAes::create(kK);
    ASSERT_TRUE(aes);
    network_ = std::make_unique<OpenSslAes>(std::move(*aes));
    auto usim = OpenSslAes::create(kK);
    ASSERT_TRUE(usim);
    usim_ = std::make_unique<OpenSslAes>(std::move(*usim));
    auto sqns = SqnArray::create(params_);
    ASSERT_TRUE(sqns);
    sqns_ = std::make_unique<SqnArray>(std::move(*sqns));
  }

  void recreate(const SqnParameters& params) {
    params_ = params;
    auto sqns = SqnArray::create(params_);
    ASSERT_TRUE(sqns);
    sqns_ = std::make_unique<SqnArray>(std::move(*sqns));
  }

  // What the network sends for (RAND, SQN, AMF).
  AuthVector challenge(uint64_t sqn_value, Amf amf = {0x80, 0x00}, const Rand& rand = kRand) {
    auto v = generate_vector(*network_, kOpc, rand, sqn_from_u64(sqn_value), amf);
    if (!v) throw std::runtime_error(v.error().describe());
    return *v;
  }

  Result<UmtsOutcome> authenticate(const Autn& autn, const Rand& rand = kRand) {
    return usim_authenticate(*usim_, kOpc, *sqns_, rand, autn);
  }

  SqnParameters params_;
  std::unique_ptr<OpenSslAes> network_, usim_;
  std::unique_ptr<SqnArray> sqns_;
};

}  // namespace

TEST_F(AUsimAuthentication, ReturnsResCkIkAndRecordsTheSqn) {
  auto v = challenge(sqn(1, 3));
  auto outcome = authenticate(v.autn);
  ASSERT_TRUE(outcome) << outcome.error().describe();
  auto* ok = std::get_if<UmtsSuccess>(&*outcome);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->res, v.xres);
  EXPECT_EQ(ok->ck, v.ck);
  EXPECT_EQ(ok->ik, v.ik);
  EXPECT_EQ(ok->sqn, sqn(1, 3));
  EXPECT_EQ(sqns_->seq()[3], 1u);
  EXPECT_EQ(sqns_->highest(), sqn(1, 3));
}

TEST_F(AUsimAuthentication, SeededWithTheTs35208SqnAnswersTheTs35208Challenge) {
  sqns_->seed(sqn_to_u64(kSetSqn));
  auto outcome = authenticate(kSetAutn);
  ASSERT_TRUE(outcome) << outcome.error().describe();
  auto* ok = std::get_if<UmtsSuccess>(&*outcome);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(to_hex(ok->res), to_hex(kSetRes));
  EXPECT_EQ(to_hex(ok->ck), to_hex(kSetCk));
  EXPECT_EQ(to_hex(ok->ik), to_hex(kSetIk));
  EXPECT_EQ(ok->sqn, sqn_to_u64(kSetSqn));
}

TEST_F(AUsimAuthentication, UsesThreeCipherCallsWithMacAAndMacSInTheLast) {
  CountingCipher k;
  auto v = challenge(sqn(1, 0));
  ASSERT_TRUE(usim_authenticate(k, kOpc, *sqns_, kRand, v.autn));
  EXPECT_EQ(k.calls(), (std::vector<std::size_t>{1, 4, 2}));

  CountingCipher replay;
  auto outcome = usim_authenticate(replay, kOpc, *sqns_, kRand, v.autn);
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(std::holds_alternative<UmtsSyncFailure>(*outcome));
  EXPECT_EQ(replay.calls(), (std::vector<std::size_t>{1, 4, 2})) << "AUTS costs no extra call";
}

TEST_F(AUsimAuthentication, RefusesABadMacAndLeavesTheSqnArrayUntouched) {
  ASSERT_TRUE(std::holds_alternative<UmtsSuccess>(*authenticate(challenge(sqn(4, 1)).autn)));
  const auto before = sqns_->seq();
  auto v = challenge(sqn(5, 1));
  for (std::size_t byte : {0u, 6u, 8u, 15u}) {  // concealed SQN, AMF, first and last MAC byte
    Autn forged = v.autn;
    forged[byte] ^= 0x01;
    auto outcome = authenticate(forged);
    ASSERT_FALSE(outcome) << byte;
    EXPECT_EQ(outcome.error().code, Code::MacFailure);
    EXPECT_EQ(sqns_->seq(), before);
  }
  auto other_rand = authenticate(v.autn, hex_array<16>("00000000000000000000000000000001"));
  ASSERT_FALSE(other_rand);
  EXPECT_EQ(other_rand.error().code, Code::MacFailure);
  EXPECT_EQ(sqns_->seq(), before);
}

TEST_F(AUsimAuthentication, ChecksTheMacBeforeTheSqn) {
  // A stale SQN with a bad MAC is a MAC failure: no AUTS is disclosed for forged challenges.
  ASSERT_TRUE(std::holds_alternative<UmtsSuccess>(*authenticate(challenge(sqn(9, 0)).autn)));
  Autn forged = challenge(sqn(9, 0)).autn;
  forged[12] ^= 0x80;
  auto outcome = authenticate(forged);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, Code::MacFailure);
}

TEST_F(AUsimAuthentication, AnswersAnSqnTooFarAheadWithAutsTheNetworkTurnsIntoSqnMs) {
  ASSERT_TRUE(std::holds_alternative<UmtsSuccess>(*authenticate(challenge(sqn(100, 7)).autn)));
  const auto before = sqns_->seq();
  auto v = challenge(sqn(100 + params_.delta + 1, 7));
  auto outcome = authenticate(v.autn);
  ASSERT_TRUE(outcome) << outcome.error().describe();
  auto* sync = std::get_if<UmtsSyncFailure>(&*outcome);
  ASSERT_NE(sync, nullptr);
  EXPECT_EQ(sqns_->seq(), before);

  auto sqn_ms = verify_auts(*network_, kOpc, kRand, sync->auts);
  ASSERT_TRUE(sqn_ms) << sqn_ms.error().describe();
  EXPECT_EQ(sqn_to_u64(*sqn_ms), sqn(100, 7));

  // Resynchronised, the network's next SQN is accepted.
  auto next = authenticate(challenge(sqn_to_u64(*sqn_ms) + (1u << kIndBits)).autn);
  ASSERT_TRUE(next);
  EXPECT_TRUE(std::holds_alternative<UmtsSuccess>(*next));
}

TEST_F(AUsimAuthentication, RefusesTheSameAutnTheSecondTimeWithAuts) {
  auto v = challenge(sqn(42, 12));
  auto first = authenticate(v.autn);
  ASSERT_TRUE(first);
  ASSERT_TRUE(std::holds_alternative<UmtsSuccess>(*first));
  const auto after_first = sqns_->seq();

  auto replay = authenticate(v.autn);
  ASSERT_TRUE(replay);
  auto* sync = std::get_if<UmtsSyncFailure>(&*replay);
  ASSERT_NE(sync, nullptr) << "a replayed challenge must not yield RES/CK/IK again";
  EXPECT_EQ(sqns_->seq(), after_first);
  auto sqn_ms = verify_auts(*network_, kOpc, kRand, sync->auts);
  ASSERT_TRUE(sqn_ms);
  EXPECT_EQ(sqn_to_u64(*sqn_ms), sqn(42, 12));
}

TEST_F(AUsimAuthentication, ProducesAutsThatFailsVerificationOnceTampered) {
  auto v = challenge(sqn(1 + params_.delta, 0));
  auto outcome = authenticate(v.autn);
  ASSERT_TRUE(outcome);
  auto* sync = std::get_if<UmtsSyncFailure>(&*outcome);
  ASSERT_NE(sync, nullptr);
  EXPECT_TRUE(verify_auts(*network_, kOpc, kRand, sync->auts));
  Auts tampered = sync->auts;
  tampered[2] ^= 0x04;
  auto bad = verify_auts(*network_, kOpc, kRand, tampered);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Code::MacFailure);
  EXPECT_FALSE(verify_auts(*network_, kOpc, hex_array<16>("ffffffffffffffffffffffffffffffff"), sync->auts));
}

TEST_F(AUsimAuthentication, RequiresTheAmfSeparationBitWhenTheProfileSaysSo) {
  SqnParameters strict;
  strict.require_amf_separation = true;
  recreate(strict);
  auto without = challenge(sqn(1, 0), Amf{0x7f, 0xff});
  auto refused = authenticate(without.autn);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::AmfFailure);
  EXPECT_EQ(sqns_->highest(), 0u) << "state untouched";

  auto with = challenge(sqn(1, 0), Amf{0x80, 0x00});
  auto accepted = authenticate(with.autn);
  ASSERT_TRUE(accepted) << accepted.error().describe();
  EXPECT_TRUE(std::holds_alternative<UmtsSuccess>(*accepted));
}

TEST_F(AUsimAuthentication, IgnoresTheAmfSeparationBitWhenNotRequired) {
  auto v = challenge(sqn(1, 0), Amf{0x00, 0x00});
  auto outcome = authenticate(v.autn);
  ASSERT_TRUE(outcome) << outcome.error().describe();
  EXPECT_TRUE(std::holds_alternative<UmtsSuccess>(*outcome));
}

TEST_F(AUsimAuthentication, ChecksTheSqnBeforeTheAmfSeparationBit) {
  SqnParameters strict;
  strict.require_amf_separation = true;
  recreate(strict);
  auto far = challenge(sqn(1 + strict.delta, 0), Amf{0x00, 0x00});
  auto outcome = authenticate(far.autn);
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(std::holds_alternative<UmtsSyncFailure>(*outcome));
}

TEST_F(AUsimAuthentication, PassesOnACipherFailureWithoutTouchingState) {
  auto v = challenge(sqn(3, 3));
  for (std::size_t failing_call : {1u, 2u, 3u}) {
    CountingCipher k(failing_call);
    auto outcome = usim_authenticate(k, kOpc, *sqns_, kRand, v.autn);
    ASSERT_FALSE(outcome) << failing_call;
    EXPECT_EQ(outcome.error().code, Code::TpmFailure);
    EXPECT_EQ(k.calls().size(), failing_call);
    EXPECT_EQ(sqns_->highest(), 0u);
  }
}

TEST(AGsmUsim, AnswersWithTheC2C3ConversionOfItsOwnUmtsResult) {
  auto k = OpenSslAes::create(kK);
  ASSERT_TRUE(k);
  auto triplet = gsm_authenticate(*k, kOpc, kRand);
  ASSERT_TRUE(triplet);
  auto expected = gsm_convert(kSetRes, kSetCk, kSetIk);
  EXPECT_EQ(triplet->sres, expected.sres);
  EXPECT_EQ(triplet->kc, expected.kc);
  EXPECT_EQ(k->calls(), 2u);
}

TEST(AGsmConversion, XorsTheHalvesAsTs33102Says) {
  Res xres{0x01, 0x02, 0x03, 0x04, 0x10, 0x20, 0x30, 0x40};
  Block ck{}, ik{};
  ck[0] = 0xf0;
  ck[8] = 0x0f;
  ik[7] = 0xaa;
  ik[15] = 0x55;
  auto t = gsm_convert(xres, ck, ik);
  EXPECT_EQ(t.sres, (std::array<uint8_t, 4>{0x11, 0x22, 0x33, 0x44}));
  EXPECT_EQ(t.kc, (std::array<uint8_t, 8>{0xff, 0, 0, 0, 0, 0, 0, 0xff}));
}
