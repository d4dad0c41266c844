// Every TS 35.208 test set in tests/vectors (a copy of the conformance data the project was
// given) through the real daemon: K imported into the TPM, Milenage's AES run there, the
// network's AUTN of the set answered with the set's RES, CK and IK. Each set twice: once with
// OPc given, once with OP given and OPc computed at install with the TPM-held K (TS 35.206 §4.1).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/mcimd_instance.hpp"

using namespace mcimd::test;
using nlohmann::json;

namespace {

struct Vector {
  std::string set, k, rand, sqn, amf, op, opc, res, ck, ik, autn;
};

std::vector<Vector> ts35208_sets() {
  std::ifstream in(std::string(MCIMD_VECTORS_DIR) + "/milenage-ts35208-sets-1-3-4.csv");
  if (!in) throw std::runtime_error("missing tests/vectors/milenage-ts35208-sets-1-3-4.csv");
  std::string line;
  std::getline(in, line);  // set,K,RAND,SQN,AMF,OP,OPc,f1_MAC-A,f1*_MAC-S,f2_RES,f3_CK,f4_IK,f5_AK,f5*_AKstar,AUTN_derived
  std::vector<Vector> out;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string field; std::getline(fields, field, ',');) f.push_back(field);
    if (f.size() != 15) throw std::runtime_error("malformed vector line: " + line);
    out.push_back(Vector{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[9], f[10], f[11], f[14]});
  }
  return out;
}

// The set's SQN less one SEQ step (same IND): the first SQN the profile accepts is the set's.
std::string sqn_below(const std::string& sqn_hex) {
  unsigned long long sqn = std::stoull(sqn_hex, nullptr, 16);
  char buf[13];
  std::snprintf(buf, sizeof buf, "%012llx", sqn - 32);
  return buf;
}

}  // namespace

TEST(EveryTs35208Set, IsAnsweredThroughTheDaemonWithTheTpmHeldKWithOpcGivenOrDerivedFromOp) {
  auto sets = ts35208_sets();
  ASSERT_EQ(sets.size(), 3u) << "sets 1, 3 and 4";
  McimdInstance mcimd;
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  unsigned iccid = 0;
  std::size_t answered = 0;
  for (const auto& v : sets) {
    for (const char* form : {"opc", "op"}) {
      SCOPED_TRACE("set " + v.set + " with " + form);
      char iccid_text[32];
      std::snprintf(iccid_text, sizeof iccid_text, "89490012345678901%02u", iccid++);
      auto yaml = mcimd.dir() / "profile.yaml";
      std::ofstream(yaml) << "iccid: \"" << iccid_text << "\"\nimsi: \"00101012345678" << iccid % 10
                          << "\"\nk: " << v.k << "\n"
                          << form << ": " << (std::string(form) == "opc" ? v.opc : v.op) << "\namf: \"" << v.amf
                          << "\"\nsqn:\n  initial: \"" << sqn_below(v.sqn) << "\"\n  ind-bits: 5\n";
      auto installed = mcimd.mcimctl({"install", yaml.string()});
      std::filesystem::remove(yaml);
      ASSERT_EQ(installed.exit_code, 0) << installed.err << mcimd.log();
      const std::string path = installed.out.substr(0, installed.out.find('\n'));
      ASSERT_EQ(mcimd.mcimctl({"enable", path}).exit_code, 0);
      auto r = mcimd.mcimctl({"authenticate", path, "--rand", v.rand, "--autn", v.autn, "--json"});
      ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
      auto answer = json::parse(r.out);
      EXPECT_EQ(answer.value("res", ""), v.res);
      EXPECT_EQ(answer.value("ck", ""), v.ck);
      EXPECT_EQ(answer.value("ik", ""), v.ik);
      ++answered;
    }
  }
  EXPECT_EQ(answered, 6u);
}
