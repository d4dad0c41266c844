// Reference policy YAML: accepted shape, and errors that name the key and its line.
#include <gtest/gtest.h>

#include "attestation/policy.hpp"
#include "attestation/verifier_tpm.hpp"
#include "attestation/eventlog.hpp"

using namespace mcimd;
using namespace mcimd::attestation;

namespace {

const std::string kSha256A(64, 'a');
const std::string kSha256B(64, 'b');

TEST(AReferencePolicy, ParsesBanksPcrsAndEvents) {
  auto p = parse_policy("required_pcrs:\n  sha256: [0, 7]\n"
                        "pcrs:\n  sha256:\n    7: [\"" + kSha256A + "\", \"" + kSha256B + "\"]\n"
                        "  sha1:\n    0: [\"" + std::string(40, 'c') + "\"]\n"
                        "events:\n  EV_EFI_BOOT_SERVICES_APPLICATION:\n    sha256: [\"" + kSha256A + "\"]\n"
                        "require_event_log: true\n");
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->required_pcrs.at(alg::kSha256), (std::set<unsigned>{0, 7}));
  EXPECT_EQ(p->pcrs.at(alg::kSha256).at(7).size(), 2u);
  EXPECT_EQ(p->pcrs.at(alg::kSha1).at(0).size(), 1u);
  EXPECT_EQ(p->events.at(ev::kEfiBootServicesApplication).at(alg::kSha256).size(), 1u);
  EXPECT_TRUE(p->require_event_log);
  EXPECT_FALSE(p->require_ima_log);
}

TEST(AReferencePolicy, NamesAnUnknownKeyAndItsLine) {
  auto p = parse_policy("required_pcrs:\n  sha256: [7]\npcr:\n  sha256: {}\n");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Code::InvalidArgument);
  EXPECT_NE(p.error().message.find("line 3"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("\"pcr\""), std::string::npos) << p.error().message;
}

TEST(AReferencePolicy, RefusesUnknownBanksEventTypesAndBadDigests) {
  struct Case {
    std::string yaml, expect;
  } cases[] = {
      {"pcrs:\n  md5:\n    7: []\n", "line 2: unknown bank \"md5\""},
      {"pcrs:\n  sha256:\n    24: []\n", "line 3: PCR index \"24\""},
      {"pcrs:\n  sha256:\n    7: [\"abcd\"]\n", "line 3"},
      {"events:\n  EV_MADE_UP:\n    sha256: []\n", "unknown event type \"EV_MADE_UP\""},
      {"require_event_log: maybe\n", "true or false"},
      {"- a list\n", "mapping"},
      {"pcrs: [unclosed\n", "policy line"},
  };
  for (const auto& c : cases) {
    auto p = parse_policy(c.yaml);
    ASSERT_FALSE(p) << c.yaml;
    EXPECT_NE(p.error().message.find(c.expect), std::string::npos) << c.yaml << " → " << p.error().message;
  }
}

}  // namespace
