// EAP-AKA, EAP-AKA' and EAP-SIM end to end with real peers: eapol_test (wpa_supplicant's EAP
// peer, with external_sim=1) asks mcimd-wpa-sim, which asks mcimd and its TPM-held K; hostapd is
// the RADIUS server, and its EAP-SIM/AKA server gets vectors over the eap_sim_db protocol from
// the operator's AuC, mcim-operator eap-sim-db (TS 35.208 set 1 K/OPc, the profile's). Needs the
// Debian packages eapoltest and hostapd (scripts/install-deps installs them); fails without them.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/bytes.hpp"
#include "tests/support/mcimd_instance.hpp"

using namespace mcimd;
using namespace mcimd::test;

namespace {

const char* kHostapd = "/usr/sbin/hostapd";
const char* kEapolTest = "/usr/bin/eapol_test";
const char* kImsi = "001010123456789";  // kDemoProfileYaml
const char* kRealm = "@wlan.mnc001.mcc001.3gppnetwork.org";

// The network's AuC: `mcim-operator eap-sim-db`, speaking hostapd's eap_sim_db protocol on a UNIX
// datagram socket for the profile's subscriber (TS 35.208 set 1 K/OPc). What it did is read
// from its log: one line per AKA vector, GSM triplet set and resynchronisation.
class NetworkAuc {
 public:
  NetworkAuc(const std::filesystem::path& socket, const std::filesystem::path& log) : socket_(socket), log_(log) {
    start();
  }
  // A restarted AuC hands out SQNs from the first again: stale for a USIM that has seen them,
  // which must ask to resynchronise.
  void restart() {
    process_.reset();
    start();
  }
  // AUTS it verified: it resynchronised, or kept its SQN because the next one is fresh for the
  // USIM anyway (TS 33.102 §6.3.5).
  int auts_verified() const { return count("eap-sim-db: resynchronised IMSI ") + count(" verified, SQN kept"); }
  int vectors() const { return count("eap-sim-db: AKA vector "); }
  int triplet_sets() const { return count(" GSM triplets for IMSI "); }
  std::string log() const { return slurp(log_); }

 private:
  void start() {
    const auto before = log().size();
    process_ = std::make_unique<Process>(ProcessOptions{{binary("operator/mcim-operator").native(), "eap-sim-db",
                                                         "--socket", socket_.native(), "--imsi", kImsi, "--k", kSet1K,
                                                         "--opc", kSet1Opc},
                                                        {},
                                                        log_,
                                                        log_});
    if (!wait_until([&] { return log().find("eap-sim-db: serving IMSI", before) != std::string::npos; },
                    std::chrono::seconds(20)))
      throw std::runtime_error("mcim-operator eap-sim-db did not start: " + log());
  }
  int count(const std::string& what) const {
    const std::string text = log();
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  std::filesystem::path socket_, log_;
  std::unique_ptr<Process> process_;
};

class WpaSimEap : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kHostapd) && std::filesystem::exists(kEapolTest))
        << "needs hostapd and eapol_test: apt-get install hostapd eapoltest (scripts/install-deps)";
    ASSERT_TRUE(mcimd.start()) << mcimd.log();
    auto r = mcimd.install_profile(kDemoProfileYaml);
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
    profile = r.out.substr(0, r.out.find('\n'));
    ASSERT_EQ(mcimd.mcimctl({"enable", profile}).exit_code, 0);

    auc = std::make_unique<NetworkAuc>(dir() / "auc.sock", dir() / "auc.log");
    port = free_port_pair();
    std::ofstream(dir() / "radius_clients") << "127.0.0.1/32 radius\n";
    std::ofstream(dir() / "eap_users") << "\"0\"*\tAKA\n\"6\"*\tAKA'\n\"1\"*\tSIM\n";
    std::ofstream(dir() / "hostapd.conf") << "driver=none\ninterface=mcimd-as\n"
                                          << "radius_server_clients=" << (dir() / "radius_clients").native() << "\n"
                                          << "radius_server_auth_port=" << port << "\n"
                                          << "eap_server=1\neap_user_file=" << (dir() / "eap_users").native() << "\n"
                                          << "eap_sim_db=unix:" << (dir() / "auc.sock").native() << "\n";
    hostapd = std::make_unique<Process>(ProcessOptions{
        {kHostapd, "-dd", (dir() / "hostapd.conf").native()}, {}, dir() / "hostapd.log", dir() / "hostapd.log"});
    ASSERT_TRUE(wait_until([&] { return slurp(dir() / "hostapd.log").find("AP-ENABLED") != std::string::npos; },
                           std::chrono::seconds(10)))
        << slurp(dir() / "hostapd.log");

    std::filesystem::create_directory(dir() / "ctrl");
    bridge = std::make_unique<Process>(ProcessOptions{
        {binary("wpa-sim/mcimd-wpa-sim").native(), "--ctrl-path", (dir() / "ctrl" / "test").native(), "--socket-dir",
         dir().native(), "--profile", profile, "--ping-interval", "1", "--verbose"},
        mcimd.bus_env(),
        dir() / "bridge.log",
        dir() / "bridge.log"});
  }

  std::filesystem::path dir() { return mcimd.dir(); }

  // eapol_test's configuration for one method; without an identity, it asks for one.
  std::filesystem::path eapol_conf(const std::string& method, const std::string& identity) {
    auto conf = dir() / "eapol_test.conf";
    // external_sim is a global option of wpa_supplicant's configuration, not a network's.
    std::ofstream out(conf);
    out << "ctrl_interface=" << (dir() / "ctrl").native() << "\nexternal_sim=1\n"
        << "network={\n\tssid=\"mcimd-test\"\n\tkey_mgmt=IEEE8021X\n\teap=" << method << "\n";
    if (!identity.empty()) out << "\tidentity=\"" << identity << "\"\n";
    out << "}\n";
    return conf;
  }
  std::vector<std::string> eapol_argv(const std::filesystem::path& conf) {
    return {kEapolTest, "-c", conf.native(), "-a", "127.0.0.1", "-p", std::to_string(port), "-s", "radius", "-W",
            "-t", "30"};
  }

  // One eapol_test run; -W holds it until the bridge has attached to its control socket.
  RunResult authenticate(const std::string& method, const std::string& identity) {
    return run(eapol_argv(eapol_conf(method, identity)), {}, std::chrono::seconds(60));
  }

  static std::string tail_of(const std::string& s) { return s.substr(s.size() > 4000 ? s.size() - 4000 : 0); }
  static int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  std::string logs() {
    return "\n--- bridge ---\n" + slurp(dir() / "bridge.log") + "\n--- AuC ---\n" + slurp(dir() / "auc.log") +
           "\n--- hostapd (tail) ---\n" + tail(dir() / "hostapd.log") +
           "\n--- mcimd ---\n" + mcimd.log();
  }
  static std::string tail(const std::filesystem::path& p) {
    std::string s = slurp(p);
    return s.size() > 6000 ? s.substr(s.size() - 6000) : s;
  }

  McimdInstance mcimd;
  std::string profile;
  int port = 0;
  std::unique_ptr<NetworkAuc> auc;
  std::unique_ptr<Process> hostapd, bridge;
};

}  // namespace

TEST_F(WpaSimEap, AuthenticatesWithEapAkaThenEapAkaPrimeThroughTheTpmHeldIdentity) {
  auto aka = authenticate("AKA", std::string("0") + kImsi + kRealm);
  EXPECT_EQ(aka.exit_code, 0) << tail_of(aka.out) << logs();
  EXPECT_NE(aka.out.find("SUCCESS"), std::string::npos);

  auto aka_prime = authenticate("AKA'", std::string("6") + kImsi + kRealm);
  EXPECT_EQ(aka_prime.exit_code, 0) << tail_of(aka_prime.out) << logs();
  EXPECT_NE(aka_prime.out.find("SUCCESS"), std::string::npos);
  EXPECT_EQ(auc->auts_verified(), 0);
  EXPECT_EQ(auc->vectors(), 2);
  // The answers came from mcimd through the bridge, not from a USIM simulator in eapol_test.
  const std::string bridge_log = slurp(dir() / "bridge.log");
  EXPECT_NE(bridge_log.find("Attached to wpa_supplicant"), std::string::npos) << bridge_log;
  EXPECT_NE(bridge_log.find("Answered UMTS-AUTH request of network 0: UMTS-AUTH"), std::string::npos) << bridge_log;
}

TEST_F(WpaSimEap, ResynchronisesTheNetworkWithAutsWhenItsSqnIsStale) {
  auto first = authenticate("AKA", std::string("0") + kImsi + kRealm);
  ASSERT_EQ(first.exit_code, 0) << logs();
  auc->restart();
  auto again = authenticate("AKA", std::string("0") + kImsi + kRealm);
  EXPECT_EQ(again.exit_code, 0) << tail_of(again.out) << logs();
  EXPECT_EQ(auc->auts_verified(), 1);
  EXPECT_NE(slurp(dir() / "bridge.log").find("UMTS-AUTS"), std::string::npos);
}

TEST_F(WpaSimEap, LogsNoKeyOrChallenge) {
  auto aka = authenticate("AKA", std::string("0") + kImsi + kRealm);
  ASSERT_EQ(aka.exit_code, 0) << logs();
  // eapol_test prints the RAND and the keys it used (-dd style hexdumps); none may be in our log.
  const std::string bridge_log = slurp(dir() / "bridge.log");
  std::istringstream lines(aka.out);
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    for (const char* label : {"EAP-AKA: RAND - hexdump", "EAP-AKA: IK - hexdump", "EAP-AKA: CK - hexdump",
                              "EAP-AKA: RES - hexdump"}) {
      auto at = line.find(label);
      if (at == std::string::npos) continue;
      auto colon = line.find("):", at);
      if (colon == std::string::npos) continue;
      std::string hex;
      for (char c : line.substr(colon + 2))
        if (c != ' ') hex.push_back(c);
      ASSERT_GE(hex.size(), 8u);
      EXPECT_EQ(bridge_log.find(hex), std::string::npos) << label;
      ++checked;
    }
  }
  EXPECT_GE(checked, 4) << "eapol_test no longer prints RAND, IK, CK and RES; the check looked at nothing";
}

TEST_F(WpaSimEap, TellsTheSupplicantThePermanentIdentityWhenItHasNone) {
  // No identity in the network block: wpa_supplicant asks on its control interface, and the
  // bridge answers with the active profile's IMSI in the home network's realm.
  auto aka = authenticate("AKA", "");
  EXPECT_EQ(aka.exit_code, 0) << tail_of(aka.out) << logs();
  auto aka_prime = authenticate("AKA'", "");
  EXPECT_EQ(aka_prime.exit_code, 0) << tail_of(aka_prime.out) << logs();
  EXPECT_NE(aka.out.find("CTRL-REQ-IDENTITY-0"), std::string::npos) << "eapol_test did not ask for the identity";
  // The server saw the permanent identities, with the method's prefix (RFC 4187, RFC 9048).
  const std::string hostapd_log = slurp(dir() / "hostapd.log");
  EXPECT_NE(hostapd_log.find(std::string("0") + kImsi + kRealm), std::string::npos) << tail(dir() / "hostapd.log");
  EXPECT_NE(hostapd_log.find(std::string("6") + kImsi + kRealm), std::string::npos) << tail(dir() / "hostapd.log");
  const std::string bridge_log = slurp(dir() / "bridge.log");
  EXPECT_EQ(count(bridge_log, "Answered IDENTITY request of network 0: the permanent identity for EAP-AKA\n"), 1)
      << bridge_log;
  EXPECT_EQ(count(bridge_log, "Answered IDENTITY request of network 0: the permanent identity for EAP-AKA'\n"), 1)
      << bridge_log;
  EXPECT_EQ(bridge_log.find(kImsi), std::string::npos) << "the IMSI is not logged";
  EXPECT_EQ(auc->vectors(), 2);
}

TEST_F(WpaSimEap, IsRefusedAfterAPlatformChangeUntilTheNewStateIsApproved) {
  auto before = authenticate("AKA", std::string("0") + kImsi + kRealm);
  ASSERT_EQ(before.exit_code, 0) << tail_of(before.out) << logs();
  // The platform leaves its approved state (as a changed boot component would).
  ASSERT_EQ(mcimd.tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'b')}).exit_code, 0);
  auto refused = authenticate("AKA", std::string("0") + kImsi + kRealm);
  EXPECT_NE(refused.exit_code, 0) << tail_of(refused.out) << logs();
  EXPECT_EQ(refused.out.find("\nSUCCESS"), std::string::npos);
  // The peer rejected the challenge (UMTS-FAIL: Authentication-Reject) and the server failed it.
  EXPECT_NE(refused.out.find("CTRL-EVENT-EAP-FAILURE"), std::string::npos) << tail_of(refused.out);
  const std::string bridge_log = slurp(dir() / "bridge.log");
  EXPECT_NE(bridge_log.find("Failed to answer UMTS-AUTH request of network 0: UMTS-FAIL: PlatformStateChanged"),
            std::string::npos)
      << bridge_log;
  // The authority signs a policy for the new state: the MCIM works again.
  auto approved = mcimd.approve_current_pcrs();
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  auto after = authenticate("AKA", std::string("0") + kImsi + kRealm);
  EXPECT_EQ(after.exit_code, 0) << tail_of(after.out) << logs();
}

TEST_F(WpaSimEap, ServesASupplicantThatRestartedWhileAnAnswerWasOnItsWay) {
  // mcimd answers late (stopped), and the supplicant dies meanwhile: the bridge's answer has
  // nobody to go to. It must attach to the next supplicant on the same socket and serve it.
  const pid_t daemon = mcimd.pid();
  ASSERT_GT(daemon, 0);
  ASSERT_EQ(::kill(daemon, SIGSTOP), 0);
  auto first_log = dir() / "eapol_test-1.log";
  auto first = std::make_unique<Process>(
      ProcessOptions{eapol_argv(eapol_conf("AKA", std::string("0") + kImsi + kRealm)), {}, first_log, first_log});
  const bool asked = wait_until(
      [&] { return slurp(dir() / "bridge.log").find("Asking mcimd to answer UMTS-AUTH") != std::string::npos; },
      std::chrono::seconds(30));
  first->stop(SIGKILL);  // as a crash: its control socket file stays behind
  first.reset();
  ASSERT_EQ(::kill(daemon, SIGCONT), 0);
  ASSERT_TRUE(asked) << slurp(first_log) << logs();
  ASSERT_TRUE(wait_until(
      [&] { return slurp(dir() / "bridge.log").find("Failed to hand the answer to wpa_supplicant") != std::string::npos; },
      std::chrono::seconds(40)))
      << logs();

  auto second = authenticate("AKA", std::string("0") + kImsi + kRealm);
  EXPECT_EQ(second.exit_code, 0) << tail_of(second.out) << logs();
  EXPECT_TRUE(bridge->running()) << "the bridge itself must not have exited";
  EXPECT_GE(count(slurp(dir() / "bridge.log"), "Attached to wpa_supplicant"), 2) << logs();
}

TEST_F(WpaSimEap, AuthenticatesWithEapSimThroughTheUsimsGsmContext) {
  // EAP-SIM (RFC 4186): two or three RANDs, each answered with SRES and Kc derived in the TPM-held
  // USIM (TS 33.102 §6.8.1.2); the identity, with EAP-SIM's prefix 1, from the bridge.
  auto sim = authenticate("SIM", "");
  EXPECT_EQ(sim.exit_code, 0) << tail_of(sim.out) << logs();
  EXPECT_NE(sim.out.find("\nSUCCESS"), std::string::npos);
  EXPECT_NE(slurp(dir() / "hostapd.log").find(std::string("1") + kImsi + kRealm), std::string::npos)
      << tail(dir() / "hostapd.log");
  EXPECT_EQ(auc->triplet_sets(), 1) << auc->log();
  const std::string bridge_log = slurp(dir() / "bridge.log");
  EXPECT_NE(bridge_log.find("Answered IDENTITY request of network 0: the permanent identity for EAP-SIM"),
            std::string::npos)
      << bridge_log;
  EXPECT_NE(bridge_log.find("Answered GSM-AUTH request of network 0: GSM-AUTH"), std::string::npos) << bridge_log;
}
