// The shipped service files: the unit's exposure as systemd-analyze scores it, the account it
// runs as and the groups it needs, and that the accounts and groups it names are created.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "tests/support/process.hpp"

namespace {

const std::string kPackaging = MCIMD_SOURCE_DIR "/packaging";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The values of KEY= in a unit file, in order.
std::vector<std::string> unit_values(const std::string& unit, const std::string& key) {
  std::vector<std::string> values;
  std::istringstream lines(unit);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(key + "=", 0) == 0) values.push_back(line.substr(key.size() + 1));
  return values;
}

double exposure(const std::string& unit_file) {
  auto r = mcimd::test::run({"systemd-analyze", "security", "--offline=true", "--no-pager", unit_file});
  std::smatch m;
  static const std::regex overall(R"(Overall exposure level for [^:]+: ([0-9]+\.[0-9]+))");
  if (!std::regex_search(r.out, m, overall))
    throw std::runtime_error("systemd-analyze security printed no exposure level: " + r.out + r.err);
  return std::stod(m[1]);
}

TEST(TheServiceUnit, ScoresAtMostOneInSystemdAnalyzeSecurity) {
  EXPECT_LE(exposure(kPackaging + "/systemd/mcimd.service"), 1.0);
}

TEST(TheServiceUnit, WouldScoreWorseAsRoot) {
  // The score measures what the unit says: the same unit without its User= scores worse.
  const std::string original = kPackaging + "/systemd/mcimd.service";
  std::string unit = slurp(original);
  unit = std::regex_replace(unit, std::regex("\nUser=mcimd\n"), "\n");
  const std::string path = ::testing::TempDir() + "/mcimd.service";
  std::ofstream(path) << unit;
  EXPECT_GT(exposure(path), exposure(original));
}

TEST(TheServiceUnit, RunsAsItsOwnUserWithTheTpmGroupAndNoCapability) {
  const std::string unit = slurp(kPackaging + "/systemd/mcimd.service");
  EXPECT_EQ(unit_values(unit, "User"), std::vector<std::string>{"mcimd"});
  EXPECT_EQ(unit_values(unit, "Group"), std::vector<std::string>{"mcimd"});
  EXPECT_EQ(unit_values(unit, "SupplementaryGroups"), std::vector<std::string>{"tss"});
  EXPECT_EQ(unit_values(unit, "CapabilityBoundingSet"), std::vector<std::string>{""});
  EXPECT_TRUE(unit_values(unit, "AmbientCapabilities").empty());
  for (const char* key : {"PrivateMounts", "ProtectProc", "ProcSubset", "IPAddressDeny", "PrivateNetwork"})
    EXPECT_FALSE(unit_values(unit, key).empty()) << key;
}

TEST(TheSysusersFiles, CreateTheAccountsAndGroupsTheUnitsAndConfigurationName) {
  const std::string users = slurp(kPackaging + "/systemd/mcimd.sysusers") +
                            slurp(kPackaging + "/systemd/mcimd-agent.sysusers");
  EXPECT_TRUE(std::regex_search(users, std::regex(R"((^|\n)u mcimd )")));
  EXPECT_TRUE(std::regex_search(users, std::regex(R"((^|\n)m mcimd tss\n)")));
  EXPECT_TRUE(std::regex_search(users, std::regex(R"((^|\n)u mcimd-agent )")));
  // Every group the packaged configuration names exists once the package is installed.
  const std::string config = slurp(kPackaging + "/etc/mcimd.yaml");
  static const std::regex groups(R"(-groups: \[([a-z-]+)\])");
  int named = 0;
  for (std::sregex_iterator it(config.begin(), config.end(), groups), end; it != end; ++it, ++named) {
    const std::string group = (*it)[1];
    EXPECT_TRUE(std::regex_search(users, std::regex("(^|\n)[ug] " + group + " "))) << group;
  }
  EXPECT_EQ(named, 3);
}

// The <policy user|group="..."> contexts of a bus policy file that allow owning `name`
// ("user=mcimd", ...), in order.
std::vector<std::string> owners_of(const std::string& policy_file, const std::string& name) {
  const std::string policy = slurp(kPackaging + "/dbus/" + policy_file);
  const std::regex own_rule(R"re(<policy (\w+)="([^"]+)">((?:(?!</policy>)[\s\S])*?)<allow own=")re" +
                            std::regex_replace(name, std::regex(R"(\.)"), R"(\.)") + R"re("/>)re");
  std::vector<std::string> owners;
  for (std::sregex_iterator it(policy.begin(), policy.end(), own_rule), end; it != end; ++it)
    owners.push_back(std::string((*it)[1]) + "=" + std::string((*it)[2]));
  return owners;
}

TEST(TheBusPolicy, LetsOnlyRootAndTheServiceAccountOwnTheName) {
  EXPECT_EQ(owners_of("org.mcimd.Tre1.conf", "org.mcimd.Tre1"), (std::vector<std::string>{"user=mcimd", "user=root"}));
}

TEST(TheOfonoCompatBusPolicy, LetsOnlyRootAndTheServiceAccountOwnOrgOfono) {
  EXPECT_EQ(owners_of("mcimd-ofono-compat.conf", "org.ofono"), (std::vector<std::string>{"user=mcimd", "user=root"}));
  EXPECT_TRUE(owners_of("org.mcimd.Tre1.conf", "org.ofono").empty()) << "the main policy must not claim oFono's name";
}

TEST(TheOfonoCompatBusPolicy, IsShippedAsAnExampleAndNeverInstalledWhereTheBusReadsIt) {
  // Active by itself it would hand a running oFono's name and callers to mcimd.
  const std::string rules = slurp(kPackaging + "/CMakeLists.txt");
  EXPECT_TRUE(std::regex_search(rules, std::regex(R"(install\(FILES dbus/mcimd-ofono-compat\.conf DESTINATION \$\{CMAKE_INSTALL_DOCDIR\}/examples\))")));
  EXPECT_FALSE(std::regex_search(rules, std::regex(R"(mcimd-ofono-compat\.conf[^)]*dbus-1)")));
  const std::string installed = slurp(kPackaging + "/debian/mcimd.install");
  EXPECT_NE(installed.find("usr/share/doc/mcimd/examples/mcimd-ofono-compat.conf"), std::string::npos);
  EXPECT_EQ(installed.find("system.d/mcimd-ofono-compat.conf"), std::string::npos);
}

}  // namespace
