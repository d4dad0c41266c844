// Real firmware event logs (tests/vectors/eventlogs, from tpm2-tools' fixtures): parsing, replay
// against tpm2_eventlog as an independent oracle, the content the digests vouch for, the refusal
// of the legacy SHA-1 format, and the two forgeries that used to pass: a log with PCR 7's events
// removed, and the SecureBoot variable's event relabelled so a rule keyed on its type missed it.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "attestation/log_checks.hpp"
#include "attestation/policy_check.hpp"
#include "attestation/policy.hpp"
#include "attestation/uefi_events.hpp"
#include "attestation/verifier.hpp"
#include "common/file.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"
#include "tests/support/process.hpp"

using namespace mcimd;
using namespace mcimd::attestation;
using namespace mcimd::test::verifier;

namespace {

const std::filesystem::path kLogs = std::filesystem::path(MCIMD_VECTORS_DIR) / "eventlogs";

Bytes read_log(const std::string& name) {
  auto data = read_file(kLogs / name, 1u << 20);
  if (!data) throw std::runtime_error(name + ": " + data.error().message);
  return *data;
}

// The final PCR values tpm2_eventlog (tpm2-tools 5.4) prints under "pcrs:", by bank:
//   pcrs:
//     sha256:
//       0  : 0x758b…
PcrValues oracle_pcrs(const std::string& name) {
  auto r = test::run({"tpm2_eventlog", (kLogs / name).string()});
  if (r.exit_code != 0) throw std::runtime_error("tpm2_eventlog " + name + " failed: " + r.err);
  PcrValues out;
  std::istringstream in(r.out.substr(r.out.rfind("\npcrs:\n") + 1));
  std::string line;
  uint16_t bank = 0;
  std::getline(in, line);  // "pcrs:"
  while (std::getline(in, line)) {
    if (line.starts_with("    ")) {
      const auto colon = line.find(':');
      const unsigned pcr = unsigned(std::stoul(line.substr(0, colon)));
      out[bank][pcr] = *from_hex(line.substr(line.find("0x") + 2), "PCR value");
    } else if (line.starts_with("  ") && line.ends_with(":")) {
      bank = *hash_alg_from_name(line.substr(2, line.size() - 3));
    }
  }
  if (out.empty()) throw std::runtime_error("tpm2_eventlog printed no PCRs for " + name);
  return out;
}

// Re-serialises a parsed log (header event unchanged) with its events edited: the forger's tool.
Bytes serialise(const Bytes& original, const EventLog& log) {
  const std::size_t header = 32 + (original[28] | original[29] << 8 | original[30] << 16 | original[31] << 24);
  Bytes out(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(header));
  for (const auto& e : log.events) {
    EventLogBuilder::put32(out, e.pcr);
    EventLogBuilder::put32(out, e.type);
    EventLogBuilder::put32(out, uint32_t(e.digests.size()));
    for (const auto& d : e.digests) {
      EventLogBuilder::put16(out, d.hash_alg);
      out.insert(out.end(), d.digest.begin(), d.digest.end());
    }
    EventLogBuilder::put32(out, uint32_t(e.data.size()));
    out.insert(out.end(), e.data.begin(), e.data.end());
  }
  return out;
}

class ARealEventLog : public ::testing::TestWithParam<const char*> {};

TEST_P(ARealEventLog, ReplaysToWhatTpm2EventlogComputes) {
  const Bytes bytes = read_log(GetParam());
  auto log = parse_event_log(bytes);
  ASSERT_TRUE(log) << log.error().describe();
  auto replay = replay_event_log(*log);
  ASSERT_TRUE(replay) << replay.error().describe();
  const PcrValues oracle = oracle_pcrs(GetParam());
  for (const auto& [bank, values] : oracle) {
    ASSERT_TRUE(replay->pcrs.count(bank)) << hash_alg_name(bank);
    for (const auto& [pcr, value] : values) {
      EXPECT_TRUE(replay->covered.count(pcr)) << pcr;
      EXPECT_EQ(to_hex(replay->pcrs.at(bank).at(pcr)), to_hex(value)) << GetParam() << " " << pcr_label(bank, pcr);
    }
    // What the oracle does not list, no event extended: the initial value.
    for (const auto& [pcr, value] : replay->pcrs.at(bank))
      if (!values.count(pcr)) {
        Bytes initial(hash_size(bank), 0);
        if (pcr == 0 && log->startup_locality) initial.back() = *log->startup_locality;
        EXPECT_EQ(value, initial) << pcr_label(bank, pcr);
      }
  }
  // A quote of exactly those values is what the log replays to.
  std::string detail;
  EXPECT_TRUE(check_event_log_replay(*replay, oracle, detail)) << detail;
}

TEST_P(ARealEventLog, SurvivesEveryTruncationWithANamedError) {
  const Bytes bytes = read_log(GetParam());
  auto full = parse_event_log(bytes);
  ASSERT_TRUE(full) << full.error().describe();
  // Where each event ends: a cut there is a shorter log; anywhere else the log is truncated.
  const std::size_t header = 32 + (bytes[28] | bytes[29] << 8 | bytes[30] << 16 | bytes[31] << 24);
  std::set<std::size_t> boundaries{header};
  std::size_t end = header;
  for (const auto& e : full->events) {
    end += 4 + 4 + 4 + 4 + e.data.size();  // PCR, type, digest count, event size, event
    for (const auto& d : e.digests) end += 2 + d.digest.size();
    boundaries.insert(end);
  }
  ASSERT_EQ(end, bytes.size()) << "the events account for every byte of the file";
  std::size_t refused = 0;
  for (std::size_t n = 0; n < bytes.size(); n += 97) {
    auto log = parse_event_log(std::span<const uint8_t>(bytes.data(), n));
    if (boundaries.contains(n)) {
      EXPECT_TRUE(log) << n << ": " << log.error().describe();
      continue;
    }
    ASSERT_FALSE(log) << GetParam() << " cut at byte " << n << " of " << bytes.size() << " was accepted";
    EXPECT_FALSE(log.error().message.empty());
    ++refused;
  }
  EXPECT_GT(refused, 0u);
}

INSTANTIATE_TEST_SUITE_P(FromTpm2ToolsFixtures, ARealEventLog,
                         ::testing::Values("event-arch-linux.bin", "event-bootorder.bin",
                                           "event-gce-ubuntu-2104-log.bin", "event-moklisttrusted.bin",
                                           "event-postcode.bin", "event-sd-boot-fedora37.bin", "event-uefivar.bin"));

TEST(TheLegacySha1Log, IsRefusedNamingItsFormat) {
  auto log = parse_event_log(read_log("event-uefi-sha1-log.bin"));
  ASSERT_FALSE(log);
  EXPECT_TRUE(log.error().message.starts_with("legacy_format")) << log.error().message;
  EXPECT_NE(log.error().message.find("SHA-1-only"), std::string::npos) << log.error().message;
  // tpm2_eventlog does read it: the refusal is ours, for its SHA-1-only digests.
  EXPECT_EQ(test::run({"tpm2_eventlog", (kLogs / "event-uefi-sha1-log.bin").string()}).exit_code, 0);
}

TEST(ALogWithFewerDigestsThanItsBanks, IsReplayedOnlyInTheBanksEveryEventCovers) {
  auto log = parse_event_log(read_log("event-uefivar.bin"));
  ASSERT_TRUE(log);
  auto replay = replay_event_log(*log);
  ASSERT_TRUE(replay);
  EXPECT_TRUE(replay->pcrs.count(alg::kSha1) && replay->pcrs.count(alg::kSha256));
  ASSERT_TRUE(replay->unreplayable.count(alg::kSha384));
  EXPECT_NE(replay->unreplayable.at(alg::kSha384).find("event 1 has no sha384 digest"), std::string::npos);
  // A quote of the sha384 bank cannot be vouched for by this log.
  PcrValues quoted = oracle_pcrs("event-uefivar.bin");
  quoted[alg::kSha384][7] = Bytes(48, 0);
  std::string detail;
  auto s = check_event_log_replay(*replay, quoted, detail);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("sha384 bank cannot be replayed"), std::string::npos) << s.error().message;
}

// --- what the digests vouch for --------------------------------------------------------------------

EventContent content_of(const std::string& name) {
  auto log = parse_event_log(read_log(name));
  if (!log) throw std::runtime_error(name + ": " + log.error().message);
  return read_event_content(*log);
}

// The applications PCR 4 measured, by the file paths their (uncovered) device paths name.
void expect_image_paths(const EventContent& c, const std::vector<std::string>& paths) {
  ASSERT_EQ(c.images.size(), paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) EXPECT_EQ(c.images[i].file_path, paths[i]) << i;
}

const MeasuredVariable* find_variable(const EventContent& c, std::string_view name) {
  for (const auto& v : c.variables)
    if (v.variable.name == name) return &v;
  return nullptr;
}

TEST(TheContentOfARealLog, NamesTheSecureBootVariablesTheDigestsCover) {
  const EventContent c = content_of("event-gce-ubuntu-2104-log.bin");
  EXPECT_TRUE(c.unverified_variables.empty());
  const MeasuredVariable* sb = find_variable(c, "SecureBoot");
  ASSERT_NE(sb, nullptr);
  EXPECT_EQ(guid_to_string(sb->variable.guid), "8be4df61-93ca-11d2-aa0d-00e098032b8c");
  EXPECT_EQ(sb->variable.data, Bytes{0});  // this VM booted with Secure Boot off
  EXPECT_EQ(sb->pcr, 7u);
  EXPECT_TRUE(sb->name_covered);
  for (const char* name : {"PK", "KEK", "db", "dbx", "SbatLevel"}) EXPECT_NE(find_variable(c, name), nullptr) << name;
  // GCE's firmware is EDK2: its boot variables are measured over VariableData only.
  const MeasuredVariable* order = find_variable(c, "BootOrder");
  ASSERT_NE(order, nullptr);
  EXPECT_FALSE(order->name_covered);
  // shim and grub.
  expect_image_paths(c, {"\\EFI\\ubuntu\\shimx64.efi", "\\EFI\\ubuntu\\grubx64.efi"});
}

TEST(TheContentOfARealLog, CoversWholeBootVariablesWhereTheFirmwareHashedThem) {
  const EventContent c = content_of("event-arch-linux.bin");
  const MeasuredVariable* boot = find_variable(c, "Boot0000");
  ASSERT_NE(boot, nullptr);
  EXPECT_TRUE(boot->name_covered);
  expect_image_paths(c, {"\\EFI\\SYSTEMD\\SYSTEMD-BOOTX64.EFI", "\\vmlinuz-linux-lts"});
}

TEST(TheContentOfARealLog, FlagsVariableEventsWhoseDigestsCoverNeitherStructureNorData) {
  // Old shim measured its "Shim" certificate with six bytes more than it hashed.
  const EventContent c = content_of("event-postcode.bin");
  ASSERT_EQ(c.unverified_variables.size(), 2u);
  EXPECT_EQ(c.unverified_variables[0].sequence, 40u);
  EXPECT_EQ(c.unverified_variables[0].type, ev::kEfiVariableAuthority);
  // So no variable rule can be judged on that log, however well the others match.
  ReferencePolicy p;
  p.variables = {VariableRule{kEfiGlobalVariable, "SecureBoot", 7, {Bytes{1}}, {}}};
  PolicyInputs in;
  in.content = &c;
  std::vector<Check> checks;
  check_policy(p, in, checks);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_FALSE(checks[0].passed);
  EXPECT_NE(checks[0].reason.find("event 40 (EV_EFI_VARIABLE_AUTHORITY) claims a UEFI variable"), std::string::npos)
      << checks[0].reason;
}

// --- the forgeries -----------------------------------------------------------------------------------

// Evidence whose quote covers sha256 PCRs 0–7 as the log's own final values (tpm2_eventlog's),
// checked against a policy that requires Secure Boot on.
class AForgedLog : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.nonce = Bytes(32, 0x42);
    ReferencePolicy p;
    p.variables = {VariableRule{kEfiGlobalVariable, "SecureBoot", 7, {Bytes{1}}, {}}};
    options_.policy = p;
  }
  void use(const std::string& name) {
    bytes_ = read_log(name);
    log_ = *parse_event_log(bytes_);
    const PcrValues oracle = oracle_pcrs(name);
    quoted_.clear();
    for (const auto& [pcr, value] : oracle.at(alg::kSha256))
      if (pcr < 8) quoted_[pcr] = value;
  }
  VerificationResult verify_log(const Bytes& log) {
    auto ev = signed_evidence(ak_.get(), options_.nonce, alg::kSha256, quoted_);
    ev.event_log = log;
    return verify(ev, options_);
  }
  const Check& check(const VerificationResult& r, const std::string& name) {
    const Check* c = r.find(name);
    if (!c) throw std::runtime_error("no check " + name + "; " + r.failures());
    return *c;
  }
  // The log with its first PCR 7 EV_EFI_VARIABLE_DRIVER_CONFIG event (SecureBoot) relabelled.
  Bytes relabelled_secure_boot(uint32_t type) {
    EventLog forged = log_;
    auto sb = std::find_if(forged.events.begin(), forged.events.end(), [](const Event& e) {
      return e.type == ev::kEfiVariableDriverConfig && e.pcr == 7;
    });
    if (sb == forged.events.end()) throw std::runtime_error("no SecureBoot event");
    sb->type = type;
    return serialise(bytes_, forged);
  }

  EvpPkey ak_ = ec_key();
  Bytes bytes_;
  EventLog log_;
  std::map<unsigned, Bytes> quoted_;
  VerifierOptions options_;
};

TEST_F(AForgedLog, IsAcceptedAsTheFirmwareWroteIt) {
  use("event-moklisttrusted.bin");  // Secure Boot on
  auto r = verify_log(bytes_);
  EXPECT_TRUE(r.ok) << r.failures();
  EXPECT_TRUE(check(r, "policy.variable[SecureBoot]").passed);
}

TEST_F(AForgedLog, WithEveryPcr7EventRemovedIsRefused) {
  use("event-moklisttrusted.bin");
  EventLog forged = log_;
  std::erase_if(forged.events, [](const Event& e) { return e.pcr == 7; });
  auto r = verify_log(serialise(bytes_, forged));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(check(r, "eventlog.replay").passed);
  EXPECT_NE(check(r, "eventlog.replay").reason.find("sha256:7"), std::string::npos) << check(r, "eventlog.replay").reason;
  // And what an unreplayable log says is never used for the policy.
  EXPECT_FALSE(check(r, "policy.variable[SecureBoot]").passed);
}

TEST_F(AForgedLog, WithTheSecureBootEventRelabelledIsStillJudgedByItsMeasuredValue) {
  // GCE booted with Secure Boot off: SecureBoot=0 is refused as the firmware logged it...
  use("event-gce-ubuntu-2104-log.bin");
  auto r = verify_log(bytes_);
  EXPECT_FALSE(check(r, "policy.variable[SecureBoot]").passed);
  // ...and relabelled as EV_EFI_ACTION, so that a rule on EV_EFI_VARIABLE_DRIVER_CONFIG digests
  // would have skipped it. The type is not extended, so the log still replays; the rule keys on
  // what the digest covers, so it still sees SecureBoot=0.
  r = verify_log(relabelled_secure_boot(ev::kEfiAction));
  EXPECT_TRUE(check(r, "eventlog.replay").passed) << check(r, "eventlog.replay").reason;
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(check(r, "policy.variable[SecureBoot]").passed);
  EXPECT_NE(check(r, "policy.variable[SecureBoot]").reason.find("data 00"), std::string::npos)
      << check(r, "policy.variable[SecureBoot]").reason;

  // Relabelled and its data garbled as well (the digest is unchanged), nothing measures SecureBoot.
  EventLog garbled = *parse_event_log(relabelled_secure_boot(ev::kEfiAction));
  for (auto& e : garbled.events)
    if (e.type == ev::kEfiAction && e.pcr == 7) e.data.back() ^= 1;
  r = verify_log(serialise(bytes_, garbled));
  EXPECT_TRUE(check(r, "eventlog.replay").passed);
  EXPECT_FALSE(check(r, "policy.variable[SecureBoot]").passed);
  EXPECT_NE(check(r, "policy.variable[SecureBoot]").reason.find("no event in the log measures SecureBoot"),
            std::string::npos)
      << check(r, "policy.variable[SecureBoot]").reason;

  // Garbled under its own type, the event poisons every variable rule.
  EventLog claimed = log_;
  for (auto& e : claimed.events)
    if (e.type == ev::kEfiVariableDriverConfig && e.pcr == 7) {
      e.data.back() ^= 1;
      break;
    }
  r = verify_log(serialise(bytes_, claimed));
  EXPECT_FALSE(check(r, "policy.variable[SecureBoot]").passed);
  EXPECT_NE(check(r, "policy.variable[SecureBoot]").reason.find("claims a UEFI variable"), std::string::npos)
      << check(r, "policy.variable[SecureBoot]").reason;
}

TEST_F(AForgedLog, RelabelledWithinItsPcrCannotHideAnApplication) {
  use("event-moklisttrusted.bin");
  ReferencePolicy p;
  const EventContent content = read_event_content(log_);
  // Allow every image but the first one (shim).
  ASSERT_GE(content.images.size(), 2u);
  for (std::size_t i = 1; i < content.images.size(); ++i)
    p.applications.push_back(ApplicationRule{std::nullopt, {{alg::kSha256, {content.images[i].digests[0].digest}}}});
  options_.policy = p;
  auto r = verify_log(bytes_);
  EXPECT_FALSE(check(r, "policy.applications").passed);
  // Relabelling shim's event as EV_EFI_ACTION does not hide it: every PCR 4 measurement that is
  // not a verified separator or action string counts as an image.
  EventLog forged = log_;
  for (auto& e : forged.events)
    if (e.pcr == 4 && e.type == ev::kEfiBootServicesApplication) {
      e.type = ev::kEfiAction;
      break;
    }
  r = verify_log(serialise(bytes_, forged));
  EXPECT_TRUE(check(r, "eventlog.replay").passed);
  EXPECT_FALSE(check(r, "policy.applications").passed);
  EXPECT_NE(check(r, "policy.applications").reason.find("EV_EFI_ACTION"), std::string::npos)
      << check(r, "policy.applications").reason;
}

TEST(ARuleOnAnEventType, IsNoLongerAccepted) {
  auto p = parse_policy("events:\n  EV_EFI_VARIABLE_DRIVER_CONFIG:\n    sha256: []\n");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("not covered by its digest"), std::string::npos) << p.error().message;
}

// --- parsers -----------------------------------------------------------------------------------------

TEST(AUefiVariable, IsParsedOnlyWhenItsLengthsAddUp) {
  Bytes v = EventLogBuilder::uefi_variable(kEfiGlobalVariable, "SecureBoot", {1});
  auto ok = parse_uefi_variable(v);
  ASSERT_TRUE(ok) << ok.error().describe();
  EXPECT_EQ(ok->name, "SecureBoot");
  EXPECT_EQ(ok->data, Bytes{1});
  Bytes longer = v;
  longer.push_back(0);
  EXPECT_FALSE(parse_uefi_variable(longer));
  EXPECT_FALSE(parse_uefi_variable(Bytes(v.begin(), v.end() - 1)));
  EXPECT_FALSE(parse_uefi_variable(Bytes(v.begin(), v.begin() + 31)));
  Bytes huge = v;
  for (int i = 16; i < 24; ++i) huge[i] = 0xFF;  // UnicodeNameLength 2^64 − 1
  auto r = parse_uefi_variable(huge);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("bad_variable")) << r.error().message;
  Bytes surrogate = EventLogBuilder::uefi_variable(kEfiGlobalVariable, "AB", {});
  surrogate[33] = 0xD8;  // an unpaired high surrogate
  EXPECT_FALSE(parse_uefi_variable(surrogate));
}

TEST(AGuid, ReadsAndPrintsInItsTextForm) {
  auto g = guid_from_string("d719b2cb-3d3a-4596-a3bc-dad00e67656f");
  ASSERT_TRUE(g);
  EXPECT_EQ(guid_to_string(*g), "d719b2cb-3d3a-4596-a3bc-dad00e67656f");
  EXPECT_EQ(guid_to_string(kEfiGlobalVariable), "8be4df61-93ca-11d2-aa0d-00e098032b8c");
  EXPECT_FALSE(guid_from_string("d719b2cb3d3a4596a3bcdad00e67656f"));
  EXPECT_FALSE(guid_from_string("d719b2cb-3d3a-4596-a3bc-dad00e67656g"));
}

TEST(AnImageLoadEvent, NamesItsFilePathAndRefusesNodesBeyondItsEnd) {
  Bytes e = EventLogBuilder::image_load_event("\\EFI\\BOOT\\BOOTX64.EFI");
  auto ok = parse_image_load(e);
  ASSERT_TRUE(ok) << ok.error().describe();
  EXPECT_EQ(ok->file_path, "\\EFI\\BOOT\\BOOTX64.EFI");
  Bytes bad = e;
  bad[32 + 2] = 0xFF;  // the file path node claims more than the device path holds
  auto r = parse_image_load(bad);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("bad_image_load")) << r.error().message;
  Bytes zero = e;
  zero[32 + 2] = 0;
  zero[32 + 3] = 0;  // a node of length 0 would never advance
  EXPECT_FALSE(parse_image_load(zero));
  EXPECT_FALSE(parse_image_load(Bytes(e.begin(), e.begin() + 20)));
}

}  // namespace
