// Factory profile YAML: good input, and every kind of bad input named by key and line without
// ever echoing a secret.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mcim-store/store.hpp"

using namespace mcimd;
using namespace mcimd::store;

namespace {

// TS 35.208 test set 1.
constexpr const char* kK = "465b5ce8b199b49faa5f0a2ee238a6bc";
constexpr const char* kOp = "cdc202d5123e20f62b6d676ac72cb318";
constexpr const char* kOpc = "cd63cb71954a9f4e48a5994e37a02baf";

std::string minimal(const std::string& extra = "") {
  return std::string("iccid: \"8988211000000000001\"\n") +  // line 1
         "imsi: \"001010000000001\"\n" +                     // line 2
         "k: " + kK + "\n" +                                 // line 3
         "opc: " + kOpc + "\n" +                             // line 4
         extra;
}

bool mentions(const Error& e, const std::string& part) { return e.message.find(part) != std::string::npos; }

void expect_no_secret(const Error& e) {
  for (const char* secret : {kK, kOp, kOpc}) {
    const std::string s(secret);
    // Not the whole value, nor any 8-digit piece of it.
    for (std::size_t i = 0; i + 8 <= s.size(); i += 4) EXPECT_FALSE(mentions(e, s.substr(i, 8))) << e.message;
  }
}

}  // namespace

TEST(AFactoryProfile, ParsesTheShippedExample) {
  std::ifstream in(std::string(MCIMD_SOURCE_DIR) + "/mcim-store/examples/factory-profile.yaml");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto p = parse_factory_profile(text.str());
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->iccid, "8988211000000000001");
  EXPECT_EQ(p->imsi, "001010000000001");
  EXPECT_EQ(p->operator_id, "00101");
  EXPECT_EQ(p->profile_class, ProfileClass::Operational);
  EXPECT_EQ(to_hex(p->k), kK);
  ASSERT_TRUE(p->opc);
  EXPECT_FALSE(p->op);
  EXPECT_EQ(to_hex(*p->opc), kOpc);
  EXPECT_EQ(p->amf, (std::array<uint8_t, 2>{0x80, 0x00}));
  EXPECT_EQ(p->initial_sqn, 0x20u);
  EXPECT_EQ(p->sqn.ind_bits, 5u);
  EXPECT_EQ(p->sqn.delta, uint64_t{1} << 28);
  EXPECT_EQ(p->sqn.age_limit, 0u);
  EXPECT_FALSE(p->sqn.require_amf_separation);
}

TEST(AFactoryProfile, FillsDefaults) {
  auto p = parse_factory_profile(minimal());
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->operator_id, "00101") << "MCC+MNC: the first five IMSI digits";
  EXPECT_EQ(p->profile_class, ProfileClass::Operational);
  EXPECT_EQ(p->amf, (std::array<uint8_t, 2>{0x80, 0x00}));
  EXPECT_EQ(p->initial_sqn, 0u);
  EXPECT_EQ(p->sqn.ind_bits, aka::SqnParameters{}.ind_bits);
}

TEST(AFactoryProfile, ReadsOpClassAmfAndEverySqnForm) {
  auto p = parse_factory_profile(
      "iccid: 89882110000000000012\nimsi: 310410123456789\noperator: Acme M2M\nclass: bootstrap\n"
      "k: 0x465B5CE8B199B49FAA5F0A2EE238A6BC\nop: " +
      std::string(kOp) +
      "\namf: b9b9\nsqn:\n  initial: 1000\n  ind-bits: 4\n  delta: 1024\n  age-limit: 4096\n"
      "  require-amf-separation: true\n");
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->iccid, "89882110000000000012");
  EXPECT_EQ(p->operator_id, "Acme M2M");
  EXPECT_EQ(p->profile_class, ProfileClass::Bootstrap);
  EXPECT_EQ(to_hex(p->k), kK);
  ASSERT_TRUE(p->op);
  EXPECT_FALSE(p->opc);
  EXPECT_EQ(to_hex(*p->op), kOp);
  EXPECT_EQ(p->amf, (std::array<uint8_t, 2>{0xb9, 0xb9}));
  EXPECT_EQ(p->initial_sqn, 1000u) << "a decimal integer";
  EXPECT_EQ(p->sqn.ind_bits, 4u);
  EXPECT_EQ(p->sqn.delta, 1024u);
  EXPECT_EQ(p->sqn.age_limit, 4096u);
  EXPECT_TRUE(p->sqn.require_amf_separation);

  auto hex = parse_factory_profile(minimal("sqn:\n  initial: ff9bb4d0b607\n"));
  ASSERT_TRUE(hex) << hex.error().describe();
  EXPECT_EQ(hex->initial_sqn, 0xff9bb4d0b607u) << "12 hex digits (TS 35.208 set 1 SQN)";
  auto prefixed = parse_factory_profile(minimal("sqn:\n  initial: 0x20\n"));
  ASSERT_TRUE(prefixed);
  EXPECT_EQ(prefixed->initial_sqn, 0x20u);
}

struct BadYaml {
  const char* name;
  std::string yaml;
  std::vector<std::string> expected;  // substrings of the message
};

void PrintTo(const BadYaml& c, std::ostream* os) { *os << c.name; }

class ABadFactoryProfile : public testing::TestWithParam<BadYaml> {};

TEST_P(ABadFactoryProfile, IsRefusedNamingKeyAndLineWithoutSecrets) {
  const BadYaml& c = GetParam();
  auto p = parse_factory_profile(c.yaml);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Code::InvalidArgument);
  for (const auto& part : c.expected) EXPECT_TRUE(mentions(p.error(), part)) << p.error().message;
  expect_no_secret(p.error());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ABadFactoryProfile,
    testing::Values(
        BadYaml{"UnknownKey", minimal("colour: red\n"), {"colour", "line 5"}},
        BadYaml{"UnknownSqnKey", minimal("sqn:\n  ind_bits: 5\n"), {"ind_bits", "line 6"}},
        BadYaml{"SecretPastedAsKey", minimal(std::string(kOp) + ": x\n"), {"unknown key", "line 5"}},
        BadYaml{"BadHexInK",
                "iccid: \"8988211000000000001\"\nimsi: \"001010000000001\"\nk: 465b5ce8b199b49faa5f0a2ee238a6bX\nopc: " +
                    std::string(kOpc) + "\n",
                {"'k'", "line 3", "hex"}},
        BadYaml{"ShortK",
                "iccid: \"8988211000000000001\"\nimsi: \"001010000000001\"\nk: 465b5ce8b199b49faa5f0a2ee238a6\nopc: " +
                    std::string(kOpc) + "\n",
                {"'k'", "line 3"}},
        BadYaml{"BadHexInOpc",
                "iccid: \"8988211000000000001\"\nimsi: \"001010000000001\"\nk: " + std::string(kK) +
                    "\nopc: cd63cb71954a9f4e48a5994e37a02bag\n",
                {"'opc'", "line 4"}},
        BadYaml{"BothOpAndOpc", minimal("op: " + std::string(kOp) + "\n"), {"op", "opc", "line 5"}},
        BadYaml{"NeitherOpNorOpc", "iccid: \"8988211000000000001\"\nimsi: \"001010000000001\"\nk: " + std::string(kK) + "\n",
                {"op", "opc"}},
        BadYaml{"MissingK", "iccid: \"8988211000000000001\"\nimsi: \"001010000000001\"\nopc: " + std::string(kOpc) + "\n",
                {"'k'", "missing"}},
        BadYaml{"MissingIccid", "imsi: \"001010000000001\"\nk: " + std::string(kK) + "\nopc: " + std::string(kOpc) + "\n",
                {"iccid"}},
        BadYaml{"ShortIccid", "iccid: 8988211\nimsi: \"001010000000001\"\nk: " + std::string(kK) + "\n", {"iccid", "line 1"}},
        BadYaml{"LetterInImsi", "iccid: \"8988211000000000001\"\nimsi: 00101000000000A\n", {"imsi", "line 2"}},
        BadYaml{"LongImsi", "iccid: \"8988211000000000001\"\nimsi: \"0010100000000012\"\n", {"imsi", "line 2"}},
        BadYaml{"BadClass", minimal("class: roaming\n"), {"class", "line 5"}},
        BadYaml{"BadAmf", minimal("amf: 80\n"), {"amf", "line 5"}},
        BadYaml{"IndBitsZero", minimal("sqn:\n  ind-bits: 0\n"), {"sqn.ind-bits", "line 6"}},
        BadYaml{"IndBitsTooLarge", minimal("sqn:\n  ind-bits: 11\n"), {"sqn.ind-bits", "line 6"}},
        BadYaml{"NegativeDelta", minimal("sqn:\n  delta: -5\n"), {"sqn.delta", "line 6"}},
        BadYaml{"HugeDelta", minimal("sqn:\n  delta: 99999999999999999999999\n"), {"sqn.delta", "line 6"}},
        BadYaml{"SqnTooLarge", minimal("sqn:\n  initial: 0x1000000000000\n"), {"sqn.initial", "line 6"}},
        BadYaml{"BadBool", minimal("sqn:\n  require-amf-separation: maybe\n"), {"require-amf-separation", "line 6"}},
        BadYaml{"SqnNotAMap", minimal("sqn: 5\n"), {"sqn", "line 5"}},
        BadYaml{"KAsAList", "k: [1, 2]\n", {"'k'", "line 1"}},
        BadYaml{"RepeatedKey", minimal("imsi: \"001010000000002\"\n"), {"imsi", "twice", "line 5"}},
        BadYaml{"NotAMapping", "- just\n- a list\n", {"mapping"}},
        BadYaml{"BrokenSyntax", minimal("sqn: {initial: [\n"), {"invalid YAML", "line"}},
        BadYaml{"Empty", "", {"mapping"}}),
    [](const testing::TestParamInfo<BadYaml>& info) { return std::string(info.param.name); });

TEST(AFactoryProfile, RefusesAnOversizedDocument) {
  auto p = parse_factory_profile(minimal("# " + std::string(70 * 1024, 'x') + "\n"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Code::InvalidArgument);
}

TEST(AFactoryProfile, SurvivesDeepNesting) {
  auto p = parse_factory_profile(std::string(20000, '[') + std::string(20000, ']'));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Code::InvalidArgument);
}
