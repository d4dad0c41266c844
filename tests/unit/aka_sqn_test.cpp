// SQN management per TS 33.102 Annex C: IND slots, the Δ window, the age limit, the 48-bit top
// of the range, seeding and restoring persisted state.
#include <gtest/gtest.h>

#include "aka/sqn.hpp"

using namespace mcimd;
using namespace mcimd::aka;

namespace {

constexpr unsigned kIndBits = 5;  // TS 33.102 C.3.2: 32 slots
constexpr uint64_t kMaxSeq = (uint64_t{1} << (48 - kIndBits)) - 1;
constexpr uint64_t kSqnMax = (uint64_t{1} << 48) - 1;

uint64_t sqn(uint64_t seq, uint64_t ind) { return seq << kIndBits | ind; }

SqnArray make(SqnParameters params = {}) {
  auto a = SqnArray::create(params);
  if (!a) throw std::runtime_error(a.error().describe());
  return std::move(*a);
}

SqnParameters with_delta(uint64_t delta) {
  SqnParameters p;
  p.delta = delta;
  return p;
}

}  // namespace

TEST(AnSqnArray, RefusesParametersOutsideTheSupportedRange) {
  for (unsigned ind_bits : {0u, 11u}) {
    SqnParameters p;
    p.ind_bits = ind_bits;
    auto a = SqnArray::create(p);
    ASSERT_FALSE(a) << ind_bits;
    EXPECT_EQ(a.error().code, Code::InvalidArgument);
  }
  EXPECT_FALSE(SqnArray::create(with_delta(0)));
  EXPECT_FALSE(SqnArray::create(with_delta(uint64_t{1} << 43)));
  EXPECT_TRUE(SqnArray::create(with_delta((uint64_t{1} << 43) - 1)));
  SqnParameters one_slot_bit;
  one_slot_bit.ind_bits = 1;
  EXPECT_TRUE(SqnArray::create(one_slot_bit));
}

TEST(AnSqnArray, StartsWith32EmptySlotsAndRefusesSeqZero) {
  auto a = make();
  EXPECT_EQ(a.seq().size(), 32u);
  EXPECT_EQ(a.highest(), 0u);
  EXPECT_FALSE(a.acceptable(sqn(0, 0)));
  EXPECT_FALSE(a.acceptable(sqn(0, 17)));
  EXPECT_TRUE(a.acceptable(sqn(1, 0)));
  EXPECT_TRUE(a.acceptable(sqn(1, 31)));
}

TEST(AnSqnArray, AcceptsALowerSeqInAnotherSlotButNotInTheSameSlot) {
  auto a = make();
  ASSERT_TRUE(a.acceptable(sqn(10, 1)));
  a.accept(sqn(10, 1));
  EXPECT_EQ(a.seq()[1], 10u);
  EXPECT_TRUE(a.acceptable(sqn(5, 2))) << "TS 33.102 C.2.2: each IND slot has its own SEQ_MS(i)";
  EXPECT_FALSE(a.acceptable(sqn(5, 1)));
  EXPECT_FALSE(a.acceptable(sqn(10, 1))) << "the same SQN twice is a replay";
  EXPECT_TRUE(a.acceptable(sqn(11, 1)));
  a.accept(sqn(5, 2));
  EXPECT_EQ(a.seq()[2], 5u);
  EXPECT_FALSE(a.acceptable(sqn(5, 2)));
}

TEST(AnSqnArray, AcceptsExactlyDeltaAheadOfTheHighestSeqAndRefusesDeltaPlusOne) {
  auto a = make(with_delta(100));
  EXPECT_TRUE(a.acceptable(sqn(100, 0)));
  EXPECT_FALSE(a.acceptable(sqn(101, 0)));
  a.accept(sqn(50, 0));
  // SEQ_MS is the highest SEQ of any slot (C.2.2), so the window moves for slot 1 too.
  EXPECT_TRUE(a.acceptable(sqn(150, 1)));
  EXPECT_FALSE(a.acceptable(sqn(151, 1)));
  EXPECT_FALSE(a.acceptable(sqn(151, 0)));
}

TEST(AnSqnArray, AppliesTheDefaultDeltaOfTwoToThe28) {
  auto a = make();
  a.accept(sqn(1000, 3));
  EXPECT_TRUE(a.acceptable(sqn(1000 + (uint64_t{1} << 28), 4)));
  EXPECT_FALSE(a.acceptable(sqn(1000 + (uint64_t{1} << 28) + 1, 4)));
}

TEST(AnSqnArray, RefusesSeqOlderThanTheAgeLimit) {
  SqnParameters p;
  p.age_limit = 10;
  auto a = make(p);
  a.accept(sqn(100, 0));
  EXPECT_TRUE(a.acceptable(sqn(90, 1))) << "exactly L behind SEQ_MS";
  EXPECT_FALSE(a.acceptable(sqn(89, 1)));
  EXPECT_FALSE(a.acceptable(sqn(1, 2)));

  auto unlimited = make();
  unlimited.accept(sqn(100, 0));
  EXPECT_TRUE(unlimited.acceptable(sqn(1, 2))) << "L = 0 means no age limit";
}

TEST(AnSqnArray, ReportsTheHighestAcceptedSqnWithItsInd) {
  auto a = make();
  a.accept(sqn(7, 3));
  EXPECT_EQ(a.highest(), sqn(7, 3));
  a.accept(sqn(7, 9));
  EXPECT_EQ(a.highest(), sqn(7, 9));
  a.accept(sqn(5, 20));
  EXPECT_EQ(a.highest(), sqn(7, 9)) << "a lower SEQ in a higher slot is not the highest SQN";
  a.accept(sqn(8, 0));
  EXPECT_EQ(a.highest(), sqn(8, 0));
}

TEST(AnSqnArray, NeverLowersASlotWhenToldToAcceptAnOlderSqn) {
  auto a = make();
  a.accept(sqn(20, 4));
  a.accept(sqn(10, 4));
  EXPECT_EQ(a.seq()[4], 20u);
  EXPECT_FALSE(a.acceptable(sqn(15, 4)));
}

TEST(AnSqnArray, AcceptsTheTopOfThe48BitRangeButNeverWrapsAround) {
  std::vector<uint64_t> seq(32, 0);
  seq[0] = kMaxSeq;
  auto a = SqnArray::restore(SqnParameters{}, seq);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->highest(), sqn(kMaxSeq, 0));
  // Slot 0 is spent: nothing above its top value exists, and a wrapped value is not "above".
  EXPECT_FALSE(a->acceptable(sqn(kMaxSeq, 0)));
  EXPECT_FALSE(a->acceptable(kSqnMax + 1));               // SEQ max + 1 in slot 0, as a 49-bit number
  EXPECT_FALSE(a->acceptable(uint64_t{1} << 48 | 0x20));  // the same, wrapped to SEQ 1 in its low 48 bits
  EXPECT_FALSE(a->acceptable(sqn(1, 0)));
  EXPECT_FALSE(a->acceptable(~uint64_t{0}));
  // Other slots still reach the very top, then are spent too.
  EXPECT_TRUE(a->acceptable(kSqnMax));
  a->accept(kSqnMax);
  EXPECT_EQ(a->highest(), kSqnMax);
  EXPECT_FALSE(a->acceptable(kSqnMax));
  // accept() ignores values beyond 48 bits instead of reducing them.
  const auto before = a->seq();
  a->accept(uint64_t{1} << 48 | sqn(3, 5));
  EXPECT_EQ(a->seq(), before);
}

TEST(AnSqnArray, DoesNotTreatASmallSeqAfterTheTopAsWithinDelta) {
  // SEQ_MS near the top: a counter that wrapped to small values is far below SEQ_MS, never
  // "slightly ahead" of it; the age limit refuses it in the other slots.
  SqnParameters p;
  p.age_limit = 1000;
  std::vector<uint64_t> seq(32, 0);
  seq[6] = kMaxSeq - 10;
  auto a = SqnArray::restore(p, seq);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->acceptable(sqn(kMaxSeq - 5, 6)));
  EXPECT_FALSE(a->acceptable(sqn(4, 6)));
  EXPECT_FALSE(a->acceptable(sqn(4, 7)));
}

TEST(AnSqnArray, SeededWithAnInitialSqnAcceptsItAndUpToDeltaAboveButNothingBelow) {
  auto a = make(with_delta(100));
  const uint64_t initial = sqn(1000, 4);
  a.seed(initial);
  EXPECT_TRUE(a.acceptable(initial));
  EXPECT_TRUE(a.acceptable(sqn(1000, 0))) << "the same SEQ in another slot is fine";
  EXPECT_TRUE(a.acceptable(sqn(999 + 100, 4))) << "SEQ0 − 1 + Δ";
  EXPECT_FALSE(a.acceptable(sqn(1000 + 100, 4)));
  EXPECT_FALSE(a.acceptable(sqn(999, 4)));
  EXPECT_FALSE(a.acceptable(sqn(999, 31)));
  EXPECT_FALSE(a.acceptable(sqn(1, 0)));
  EXPECT_LT(a.highest(), initial) << "AUTS before the first success reports a value below the initial SQN";
  for (auto s : a.seq()) EXPECT_EQ(s, 999u);
}

TEST(AnSqnArray, SeedingNeverReopensUsedSqns) {
  auto a = make();
  a.accept(sqn(2000, 1));
  a.seed(sqn(500, 0));
  EXPECT_EQ(a.seq()[1], 2000u);
  EXPECT_EQ(a.seq()[0], 499u);
  EXPECT_FALSE(a.acceptable(sqn(1500, 1)));
  EXPECT_EQ(a.highest(), sqn(2000, 1));

  auto fresh = make();
  fresh.seed(sqn(0, 9));
  EXPECT_EQ(fresh.highest(), 0u);
  EXPECT_TRUE(fresh.acceptable(sqn(1, 0))) << "SEQ0 = 0 leaves a fresh array as it was";
}

TEST(AnSqnArray, RestoresOnlyAnArrayOfTwoToTheIndBitsEntries) {
  for (std::size_t size : {0u, 31u, 33u, 64u}) {
    auto a = SqnArray::restore(SqnParameters{}, std::vector<uint64_t>(size, 0));
    ASSERT_FALSE(a) << size;
    EXPECT_EQ(a.error().code, Code::InvalidArgument);
  }
  SqnParameters eight_slots;
  eight_slots.ind_bits = 3;
  EXPECT_TRUE(SqnArray::restore(eight_slots, std::vector<uint64_t>(8, 0)));
  EXPECT_FALSE(SqnArray::restore(eight_slots, std::vector<uint64_t>(32, 0)));
}

TEST(AnSqnArray, RestoresOnlySeqValuesThatFitTheirBits) {
  std::vector<uint64_t> seq(32, 0);
  seq[3] = kMaxSeq + 1;
  auto a = SqnArray::restore(SqnParameters{}, seq);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Code::InvalidArgument);
  SqnParameters bad;
  bad.ind_bits = 0;
  EXPECT_FALSE(SqnArray::restore(bad, std::vector<uint64_t>(1, 0)));
}

TEST(AnSqnArray, RestoredFromItsOwnStateBehavesTheSame) {
  auto a = make();
  a.accept(sqn(40, 2));
  a.accept(sqn(41, 30));
  auto b = SqnArray::restore(a.parameters(), a.seq());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->highest(), a.highest());
  EXPECT_EQ(b->highest(), sqn(41, 30));
  for (uint64_t s : {sqn(40, 2), sqn(41, 2), sqn(41, 30), sqn(42, 30), sqn(3, 3)})
    EXPECT_EQ(b->acceptable(s), a.acceptable(s)) << s;
}

TEST(AnSqnValue, ConvertsBigEndianBothWays) {
  const Sqn s{0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
  EXPECT_EQ(sqn_to_u64(s), 0x010203040506u);
  EXPECT_EQ(sqn_from_u64(0x010203040506u), s);
  EXPECT_EQ(sqn_from_u64(kSqnMax), (Sqn{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(sqn_to_u64(sqn_from_u64(0xff9bb4d0b607u)), 0xff9bb4d0b607u);
}
