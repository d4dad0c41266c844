// The TCG PC Client crypto-agile event log and the IMA list: parsing, replay, and refusal of
// hostile input with a named reason.
#include <gtest/gtest.h>

#include "attestation/eventlog.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

TEST(AnEventLog, ReplaysEachBankFromZeros) {
  EventLogBuilder b;
  auto d1 = b.add(7, ev::kEfiVariableDriverConfig, "SecureBoot");
  auto d2 = b.add(7, ev::kSeparator, std::string(4, '\0'));
  auto log = parse_event_log(b.bytes());
  ASSERT_TRUE(log) << log.error().describe();
  EXPECT_EQ(log->algorithms.size(), 2u);
  EXPECT_EQ(log->events.size(), 2u);
  auto replay = replay_event_log(*log);
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->pcrs[alg::kSha1][7], extend(alg::kSha1, extend(alg::kSha1, Bytes(20, 0), d1[0]), d2[0]));
  EXPECT_EQ(replay->pcrs[alg::kSha256][7], extend(alg::kSha256, extend(alg::kSha256, Bytes(32, 0), d1[1]), d2[1]));
  // PCRs 0–7 are covered even when no event extends them: they replay to their initial value.
  EXPECT_EQ(replay->covered, (std::set<unsigned>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(replay->pcrs[alg::kSha256][0], Bytes(32, 0));
}

TEST(AnEventLog, StartsPcr0AtTheStartupLocalityAndDoesNotExtendNoActionEvents) {
  EventLogBuilder b;
  b.startup_locality(3);
  b.add_digests(0, ev::kNoAction, {Bytes(20, 9), Bytes(32, 9)}, "vendor info");
  auto d = b.add(0, ev::kSCrtmVersion, "1.0");
  auto log = parse_event_log(b.bytes());
  ASSERT_TRUE(log) << log.error().describe();
  EXPECT_EQ(log->startup_locality, 3);
  auto replay = replay_event_log(*log);
  Bytes initial(32, 0);
  initial.back() = 3;
  EXPECT_EQ(replay->pcrs[alg::kSha256][0], extend(alg::kSha256, initial, d[1]));
}

TEST(AnEventLog, CutAnywhereIsRefusedAsTruncated) {
  EventLogBuilder b;
  const std::size_t header = b.bytes().size();
  b.add(4, ev::kEfiBootServicesApplication, "grubx64.efi");
  const Bytes& full = b.bytes();
  for (std::size_t n = 0; n < full.size(); ++n) {
    auto log = parse_event_log(std::span<const uint8_t>(full.data(), n));
    // The one cut that falls on an event boundary: the header alone is a valid empty log.
    if (n == header) {
      ASSERT_TRUE(log) << log.error().describe();
      EXPECT_TRUE(log->events.empty());
      continue;
    }
    ASSERT_FALSE(log) << "a log cut at byte " << n << " of " << full.size() << " was accepted";
    EXPECT_TRUE(log.error().message.starts_with("truncated") || log.error().message.starts_with("bad_header"))
        << n << ": " << log.error().message;
  }
}

TEST(AnEventLog, WithoutTheSpecIdHeaderIsRefusedAsLegacyOrBad) {
  Bytes legacy(32, 0);
  legacy[4] = 1;  // EV_POST_CODE first: a whole SHA-1-format record, no Spec ID event
  auto r = parse_event_log(legacy);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("legacy_format")) << r.error().message;
  legacy[0] = 99;  // PCR 99: not even a legacy record
  r = parse_event_log(legacy);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("bad_header")) << r.error().message;
  // A TCG 1.2 "Spec ID Event00" header is the SHA-1-only format too.
  EventLogBuilder b;
  Bytes v00 = b.bytes();
  v00[32 + 14] = '0';
  r = parse_event_log(v00);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("legacy_format")) << r.error().message;
}

TEST(AnEventLog, StartsPcr0At4AfterAnHcrtmSequenceAndOnlyThen) {
  EventLogBuilder b({alg::kSha256});
  auto h = b.add(0, ev::kEfiHcrtmEvent, "HCRTM");
  auto d = b.add(0, ev::kSCrtmVersion, "1.0");
  auto replay = replay_event_log(*parse_event_log(b.bytes()));
  ASSERT_TRUE(replay) << replay.error().describe();
  Bytes initial(32, 0);
  initial.back() = 4;  // TPM 2.0 Part 1 §34.3
  EXPECT_EQ(replay->pcrs[alg::kSha256][0], extend(alg::kSha256, extend(alg::kSha256, initial, h[0]), d[0]));
  EventLogBuilder late({alg::kSha256});
  late.add(0, ev::kSCrtmVersion, "1.0");
  late.add(0, ev::kEfiHcrtmEvent, "HCRTM");
  auto r = replay_event_log(*parse_event_log(late.bytes()));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("bad_hcrtm")) << r.error().message;
}

TEST(AnEventLog, WithAnUndeclaredAlgorithmIsRefused) {
  EventLogBuilder b({alg::kSha256});
  Bytes log = b.bytes();
  EventLogBuilder::put32(log, 0);
  EventLogBuilder::put32(log, ev::kAction);
  EventLogBuilder::put32(log, 1);
  EventLogBuilder::put16(log, alg::kSha1);
  log.insert(log.end(), 20, 0);
  EventLogBuilder::put32(log, 0);
  auto r = parse_event_log(log);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("unknown_algorithm")) << r.error().message;
}

TEST(AnEventLog, WithAHugeEventSizeIsRefusedWithoutReadingBeyondTheBuffer) {
  EventLogBuilder b({alg::kSha256});
  Bytes log = b.bytes();
  EventLogBuilder::put32(log, 0);
  EventLogBuilder::put32(log, ev::kAction);
  EventLogBuilder::put32(log, 1);
  EventLogBuilder::put16(log, alg::kSha256);
  log.insert(log.end(), 32, 0);
  EventLogBuilder::put32(log, 0xFFFFFFF0u);
  auto r = parse_event_log(log);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("too_large")) << r.error().message;
  Bytes shorter = log;
  shorter[shorter.size() - 4] = 100;  // 100 bytes promised, none there
  shorter[shorter.size() - 3] = shorter[shorter.size() - 2] = shorter[shorter.size() - 1] = 0;
  r = parse_event_log(shorter);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("truncated")) << r.error().message;
}

TEST(AnEventLog, BeyondTheEventCapIsRefused) {
  EventLogBuilder b({alg::kSha256});
  for (int i = 0; i < 11; ++i) b.add(1, ev::kAction, "x");
  EventLogLimits limits;
  limits.max_events = 10;
  auto r = parse_event_log(b.bytes(), limits);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("too_many_events")) << r.error().message;
}

TEST(AnEventLog, WithAPcrAbove23IsRefused) {
  EventLogBuilder b({alg::kSha256});
  b.add(24, ev::kAction, "x");
  auto r = parse_event_log(b.bytes());
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("pcr_out_of_range")) << r.error().message;
}

TEST(EventTypeNames, RoundTrip) {
  EXPECT_EQ(event_type_name(ev::kEfiBootServicesApplication), "EV_EFI_BOOT_SERVICES_APPLICATION");
  EXPECT_EQ(event_type_from_name("EV_SEPARATOR"), ev::kSeparator);
  EXPECT_EQ(event_type_name(0x1234), "0x00001234");
  EXPECT_FALSE(event_type_from_name("EV_NOPE"));
}

}  // namespace
