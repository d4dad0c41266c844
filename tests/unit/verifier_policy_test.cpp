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

TEST(AReferencePolicy, ParsesBanksPcrsVariablesAndApplications) {
  auto p = parse_policy("required_pcrs:\n  sha256: [0, 7]\n"
                        "pcrs:\n  sha256:\n    7: [\"" + kSha256A + "\", \"" + kSha256B + "\"]\n"
                        "  sha1:\n    0: [\"" + std::string(40, 'c') + "\"]\n"
                        "variables:\n"
                        "  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n"
                        "    name: SecureBoot\n"
                        "    values: [\"01\"]\n"
                        "  - guid: d719b2cb-3d3a-4596-a3bc-dad00e67656f\n"
                        "    name: db\n"
                        "    pcr: 7\n"
                        "    data_sha256: [\"" + kSha256A + "\"]\n"
                        "applications:\n"
                        "  - path: '\\EFI\\BOOT\\BOOTX64.EFI'\n"
                        "    sha256: [\"" + kSha256B + "\"]\n"
                        "  - sha1: [\"" + std::string(40, 'd') + "\"]\n"
                        "require_event_log: true\n");
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->required_pcrs.at(alg::kSha256), (std::set<unsigned>{0, 7}));
  EXPECT_EQ(p->pcrs.at(alg::kSha256).at(7).size(), 2u);
  EXPECT_EQ(p->pcrs.at(alg::kSha1).at(0).size(), 1u);
  ASSERT_EQ(p->variables.size(), 2u);
  EXPECT_EQ(p->variables[0].guid, kEfiGlobalVariable);
  EXPECT_EQ(p->variables[0].name, "SecureBoot");
  EXPECT_EQ(p->variables[0].values, std::vector<Bytes>{Bytes{1}});
  EXPECT_FALSE(p->variables[0].pcr);
  EXPECT_EQ(p->variables[1].pcr, 7u);
  EXPECT_EQ(p->variables[1].data_sha256.size(), 1u);
  ASSERT_EQ(p->applications.size(), 2u);
  EXPECT_EQ(p->applications[0].path, "\\EFI\\BOOT\\BOOTX64.EFI");
  EXPECT_EQ(p->applications[0].digests.at(alg::kSha256).size(), 1u);
  EXPECT_FALSE(p->applications[1].path);
  EXPECT_TRUE(p->require_event_log);
  EXPECT_FALSE(p->require_ima_log);
  EXPECT_TRUE(p->needs_event_log());
  EXPECT_FALSE(p->needs_ima_log());
}

TEST(AReferencePolicy, NamesAnUnknownKeyAndItsLine) {
  auto p = parse_policy("required_pcrs:\n  sha256: [7]\npcr:\n  sha256: {}\n");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Code::InvalidArgument);
  EXPECT_NE(p.error().message.find("line 3"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("\"pcr\""), std::string::npos) << p.error().message;
}

TEST(AReferencePolicy, RefusesAKeyGivenTwiceAnywhere) {
  struct Case {
    std::string yaml, expect;
  } cases[] = {
      // The second list would silently have replaced (or been ignored beside) the first.
      {"pcrs:\n  sha256:\n    7: [\"" + kSha256A + "\"]\npcrs:\n  sha256:\n    7: [\"" + kSha256B + "\"]\n",
       "line 4: duplicate key \"pcrs\" (first at line 1)"},
      {"pcrs:\n  sha256:\n    7: [\"" + kSha256A + "\"]\n    7: [\"" + kSha256B + "\"]\n",
       "line 4: duplicate key \"7\" (first at line 3)"},
      {"require_event_log: true\nrequire_event_log: false\n", "duplicate key \"require_event_log\""},
      {"variables:\n  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n    name: SecureBoot\n    name: PK\n"
       "    values: [\"01\"]\n",
       "line 4: duplicate key \"name\""},
      // "07" and "7" name one PCR: leading zeros are refused rather than merged.
      {"pcrs:\n  sha256:\n    07: [\"" + kSha256A + "\"]\n", "PCR index \"07\""},
  };
  for (const auto& c : cases) {
    auto p = parse_policy(c.yaml);
    ASSERT_FALSE(p) << c.yaml;
    EXPECT_NE(p.error().message.find(c.expect), std::string::npos) << c.yaml << " → " << p.error().message;
  }
}

TEST(AReferencePolicy, RefusesUnknownBanksBadRulesAndBadDigests) {
  struct Case {
    std::string yaml, expect;
  } cases[] = {
      {"pcrs:\n  md5:\n    7: []\n", "line 2: unknown bank \"md5\""},
      {"pcrs:\n  sha256:\n    24: []\n", "line 3: PCR index \"24\""},
      {"pcrs:\n  sha256:\n    7: [\"abcd\"]\n", "line 3"},
      {"events:\n  EV_EFI_BOOT_SERVICES_APPLICATION:\n    sha256: []\n", "\"events\" rules keyed on event types"},
      {"variables:\n  - guid: 8be4df61\n    name: SecureBoot\n    values: [\"01\"]\n", "not a GUID"},
      {"variables:\n  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n    name: SecureBoot\n", "allows nothing"},
      {"variables:\n  - name: SecureBoot\n    values: [\"01\"]\n", "needs guid and name"},
      {"variables:\n  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n    name: SecureBoot\n    values: [\"01\"]\n"
       "  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n    name: SecureBoot\n    values: [\"00\"]\n",
       "has two rules"},
      {"variables:\n  - guid: 8be4df61-93ca-11d2-aa0d-00e098032b8c\n    name: SecureBoot\n    value: [\"01\"]\n",
       "unknown key \"value\" in a variable rule"},
      {"applications:\n  - path: '\\EFI\\x.efi'\n", "needs the digests of at least one bank"},
      {"applications:\n  - sha256: [\"abcd\"]\n", "applications.sha256"},
      {"applications:\n  - type: EV_EFI_BOOT_SERVICES_APPLICATION\n    sha256: []\n", "unknown key \"type\""},
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
