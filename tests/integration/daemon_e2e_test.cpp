// mcimd end to end: a real swtpm, a private dbus-daemon, the daemon binary, driven through
// mcimctl and busctl as a modem stack and an administrator would.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/mcimd_instance.hpp"

using namespace mcimd::test;
using nlohmann::json;

namespace {

const char* kProfile = "/org/mcimd/Tre1/Profile/0";
const char* kUsim = "org.mcimd.Tre1.USimApplication";

// busctl's "ay 16 0x01 0x02 …" argument form of a hex string.
std::vector<std::string> ay(const std::string& hex) {
  std::vector<std::string> out = {std::to_string(hex.size() / 2)};
  for (std::size_t i = 0; i < hex.size(); i += 2) out.push_back(std::to_string(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::vector<std::string> umts_call(const std::string& path, const std::string& rand, const std::string& autn) {
  std::vector<std::string> args = {"call", "org.mcimd.Tre1", path, kUsim, "UmtsAuthenticate", "ayay"};
  for (auto& a : ay(rand)) args.push_back(a);
  for (auto& a : ay(autn)) args.push_back(a);
  return args;
}

// Calls UmtsAuthenticate in-process (busctl prints only the message of an error, not its name)
// and returns the D-Bus error name, or "" on success. `signature` "ayay" sends RAND and AUTN;
// anything else sends one string, to test a wrong signature.
std::string umts_error(const std::string& address, const std::string& path, const std::string& rand_hex,
                       const std::string& autn_hex, const std::string& signature = "ayay") {
  sd_bus* bus = nullptr;
  if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address.c_str()) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
      sd_bus_start(bus) < 0) {
    ADD_FAILURE() << "cannot connect to the test's bus at " << address;
    sd_bus_unref(bus);
    return "(no connection)";
  }
  sd_bus_message* m = nullptr;
  if (sd_bus_message_new_method_call(bus, &m, "org.mcimd.Tre1", path.c_str(), kUsim, "UmtsAuthenticate") < 0) {
    ADD_FAILURE() << "cannot make a call to " << path;
    sd_bus_flush_close_unref(bus);
    return "(no call)";
  }
  auto bytes = [](const std::string& hex) {
    std::vector<uint8_t> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
  };
  if (signature == "ayay") {
    auto r = bytes(rand_hex), a = bytes(autn_hex);
    sd_bus_message_append_array(m, 'y', r.data(), r.size());
    sd_bus_message_append_array(m, 'y', a.data(), a.size());
  } else {
    sd_bus_message_append(m, "s", "hello");
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call(bus, m, 30'000'000, &error, &reply);
  std::string name = r < 0 && error.name ? error.name : "";
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  sd_bus_message_unref(m);
  sd_bus_flush_close_unref(bus);
  return name;
}

class AnInstalledProfile : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mcimd.start()) << mcimd.log();
    auto yaml = mcimd.dir() / "profile.yaml";
    std::ofstream(yaml) << kDemoProfileYaml;
    auto r = mcimd.mcimctl({"install", yaml.string()});
    std::filesystem::remove(yaml);  // it holds K: a factory does not leave it behind either
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  }

  json authenticate(const Challenge& c, int expect_exit = 0) {
    auto r = mcimd.mcimctl({"authenticate", "0", "--rand", c.rand, "--autn", c.autn, "--json"});
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err << mcimd.log();
    if (r.exit_code != 0) return json{{"error", r.err}};
    return json::parse(r.out);
  }

  McimdInstance mcimd;
};

}  // namespace

TEST_F(AnInstalledProfile, AnswersTheNetworksChallengeWithTheExpectedRes) {
  auto c = make_challenge(mcimd, "000000000021");
  auto answer = authenticate(c);
  EXPECT_EQ(answer.value("res", ""), c.xres);
  EXPECT_EQ(answer.value("ck", ""), c.ck);
  EXPECT_EQ(answer.value("ik", ""), c.ik);
}

TEST_F(AnInstalledProfile, AnswersAReplayedChallengeWithAutsOnly) {
  auto c = make_challenge(mcimd, "000000000021");
  ASSERT_EQ(authenticate(c).value("res", ""), c.xres) << "the first use is accepted";
  auto r = mcimd.busctl(umts_call(kProfile, c.rand, c.autn));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"AUTS\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"RES\""), std::string::npos) << r.out;
}

TEST_F(AnInstalledProfile, KeepsTheSequenceNumberAcrossARestart) {
  auto c = make_challenge(mcimd, "000000000021");
  ASSERT_EQ(authenticate(c).value("res", ""), c.xres) << "the first use is accepted";
  ASSERT_EQ(mcimd.stop(), 0) << mcimd.log();
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto again = authenticate(c);
  EXPECT_FALSE(again.contains("res")) << again.dump();
  EXPECT_TRUE(again.contains("auts")) << again.dump();
  auto next = make_challenge(mcimd, "000000000041");
  EXPECT_EQ(authenticate(next).value("res", ""), next.xres);
}

TEST_F(AnInstalledProfile, RefusesAuthenticationOnceAPcrOfItsPolicyIsExtended) {
  auto c = make_challenge(mcimd, "000000000021");
  EXPECT_EQ(authenticate(c).value("res", ""), c.xres);
  auto ext = mcimd.tpm2({"tpm2_pcrextend", "16:sha256=" + std::string(64, 'a')});
  ASSERT_EQ(ext.exit_code, 0) << ext.err;
  auto next = make_challenge(mcimd, "000000000041");
  auto address = mcimd.bus_env().at("DBUS_SYSTEM_BUS_ADDRESS");
  EXPECT_EQ(umts_error(address, kProfile, next.rand, next.autn), "org.mcimd.Tre1.Error.PlatformStateChanged");
  auto r = mcimd.mcimctl({"authenticate", "0", "--rand", next.rand, "--autn", next.autn});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("PlatformStateChanged"), std::string::npos) << r.err;
  auto state = mcimd.busctl({"get-property", "org.mcimd.Tre1", "/org/mcimd/Tre1", "org.mcimd.Tre1.Manager",
                             "PlatformState"});
  EXPECT_NE(state.out.find("changed"), std::string::npos) << state.out;
}

TEST_F(AnInstalledProfile, AnswersEachBadInputWithItsNamedErrorAndKeepsServing) {
  auto c = make_challenge(mcimd, "000000000021");
  auto address = mcimd.bus_env().at("DBUS_SYSTEM_BUS_ADDRESS");
  EXPECT_EQ(umts_error(address, kProfile, c.rand.substr(0, 30), c.autn), "org.mcimd.Tre1.Error.InvalidArgument");
  EXPECT_EQ(umts_error(address, kProfile, c.rand, "00112233445566778899aabbccddeeff"),
            "org.mcimd.Tre1.Error.MacFailure");
  EXPECT_EQ(umts_error(address, "/org/mcimd/Tre1/Profile/99", c.rand, c.autn), "org.mcimd.Tre1.Error.NotFound");
  EXPECT_EQ(umts_error(address, kProfile, c.rand, c.autn, "s"), "org.freedesktop.DBus.Error.InvalidArgs");
  // Another uid than the configured modem (1000) and admin (0) users.
  auto denied = mcimd.mcimctl({"authenticate", "0", "--rand", c.rand, "--autn", c.autn}, uid_t{65534});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.err.find("NotAuthorized"), std::string::npos) << denied.err;
  // busctl, as a modem stack would call without our client, gets the same refusal.
  auto busctl_denied = mcimd.busctl(umts_call(kProfile, c.rand, c.autn), uid_t{65534});
  EXPECT_NE(busctl_denied.exit_code, 0);
  EXPECT_NE(busctl_denied.err.find("may not authenticate"), std::string::npos) << busctl_denied.err;
  // Still serving, and the MAC failure changed no SQN state: the challenge is accepted.
  EXPECT_EQ(authenticate(c).value("res", ""), c.xres);
}

TEST_F(AnInstalledProfile, IsRefusedWhenTheStoreIsRolledBack) {
  ASSERT_EQ(mcimd.stop(), 0);
  auto backup = mcimd.dir() / "store-backup";
  std::filesystem::copy(mcimd.store(), backup, std::filesystem::copy_options::recursive);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  auto c = make_challenge(mcimd, "000000000021");
  authenticate(c);
  ASSERT_EQ(mcimd.stop(), 0);
  std::filesystem::remove_all(mcimd.store());
  std::filesystem::copy(backup, mcimd.store(), std::filesystem::copy_options::recursive);
  EXPECT_FALSE(mcimd.start());
  EXPECT_NE(mcimd.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(mcimd.log().find("RollbackDetected"), std::string::npos) << mcimd.log();
}

TEST_F(AnInstalledProfile, IsRefusedOnAnotherTpmNamingTheMismatch) {
  ASSERT_EQ(mcimd.stop(), 0);
  // Clearing the owner hierarchy gives a new SRK: for the store, another TPM.
  auto clear = mcimd.tpm2({"tpm2_clear", "-c", "p"});
  ASSERT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_FALSE(mcimd.start());
  EXPECT_NE(mcimd.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(mcimd.log().find("TpmMismatch"), std::string::npos) << mcimd.log();
}

// Everything the daemon wrote — its store, its log (stdout and stderr), and the whole work
// directory of the test, tools' files included — is searched for K, OPc, RES, CK and IK, as lower
// and upper hex, base64, base64url and raw bytes. The factory YAML (which holds K) is removed
// after the install, as a factory would.
TEST_F(AnInstalledProfile, NeverWritesASecretToTheLogOrOutsideTheStore) {
  auto c = make_challenge(mcimd, "000000000021");
  ASSERT_EQ(authenticate(c).value("res", ""), c.xres);
  auto gsm = mcimd.mcimctl({"gsm-authenticate", "0", "--rand", c.rand});
  ASSERT_EQ(gsm.exit_code, 0) << gsm.err;
  ASSERT_EQ(mcimd.stop(), 0);

  auto bytes = [](const std::string& hex) {
    std::string raw;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return raw;
  };
  auto base64 = [](const std::string& raw, bool url) {
    static const char* std_table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char* url_table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char* t = url ? url_table : std_table;
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < raw.size(); i += 3) {
      unsigned v = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8) | uint8_t(raw[i + 2]);
      out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
    }
    if (i + 1 == raw.size()) {
      unsigned v = uint8_t(raw[i]) << 16;
      out += {t[v >> 18], t[(v >> 12) & 63]};
      if (!url) out += "==";
    } else if (i + 2 == raw.size()) {
      unsigned v = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8);
      out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63]};
      if (!url) out += '=';
    }
    return out;
  };
  auto upper = [](std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return s;
  };
  struct Form {
    std::string what, text;
  };
  std::vector<Form> forms;
  for (auto [name, hex] : std::vector<std::pair<std::string, std::string>>{
           {"K", kSet1K}, {"OPc", kSet1Opc}, {"RES", c.xres}, {"CK", c.ck}, {"IK", c.ik}}) {
    const std::string raw = bytes(hex);
    forms.push_back({name + " (hex)", hex});
    forms.push_back({name + " (HEX)", upper(hex)});
    forms.push_back({name + " (base64)", base64(raw, false)});
    forms.push_back({name + " (base64url)", base64(raw, true)});
    forms.push_back({name + " (raw bytes)", raw});
  }
  std::size_t files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(mcimd.dir())) {
    if (!e.is_regular_file()) continue;
    ++files;
    std::ifstream in(e.path(), std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), {});
    for (const auto& f : forms) EXPECT_EQ(content.find(f.text), std::string::npos) << f.what << " in " << e.path();
    if (e.path().string().starts_with(mcimd.store().string())) {
      auto perms = e.status().permissions();
      EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
                std::filesystem::perms::none)
          << e.path();
    }
  }
  EXPECT_GE(files, 8u) << "the store, its objects, the log and the policy files were searched";
  EXPECT_NE(mcimd.log().find("Installed profile p0"), std::string::npos) << "the daemon's log was searched";
}

TEST(TheDaemon, ExitsNonZeroNamingTheKeyOfABadConfig) {
  TempDir dir;
  auto cfg = dir.path() / "bad.yaml";
  std::ofstream(cfg) << "store: /tmp/x\ntpm:\n  tcit: device\n";
  auto r = run({binary("daemon/mcimd").string(), "--config", cfg.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tpm.tcit"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(":3"), std::string::npos) << r.err;
}

TEST(TheDaemon, StopsCleanlyOnSigterm) {
  McimdInstance mcimd;
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  EXPECT_EQ(mcimd.stop(), 0) << mcimd.log();
}

TEST_F(AnInstalledProfile, AnswersGsmAndImsChallenges) {
  // TS 35.208 set 1 RAND; SRES and Kc by the c2/c3 conversion of TS 33.102 §6.8.1.2.
  auto r = mcimd.mcimctl({"gsm-authenticate", "0", "--rand", "23553cbe9637a89d218ae64dae47bf35", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["results"][0]["sres"], "46f8416a");
  EXPECT_EQ(j["results"][0]["kc"], "eae4be823af9a08b");
  auto c = make_challenge(mcimd, "000000000021");
  std::vector<std::string> args = {"call", "org.mcimd.Tre1", kProfile, kUsim, "ImsAuthenticate", "ayay"};
  for (auto& a : ay(c.rand)) args.push_back(a);
  for (auto& a : ay(c.autn)) args.push_back(a);
  auto ims = mcimd.busctl(args);
  ASSERT_EQ(ims.exit_code, 0) << ims.err;
  EXPECT_NE(ims.out.find("\"RES\""), std::string::npos) << ims.out;
}

TEST(AProfileWithSealedK, WorksAsTheFallbackForTpmsWithoutEncryptDecrypt) {
  McimdInstance mcimd(McimdOptions{"sha256:7,16", "sealed", "", {}});
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  // This one carries OP, not OPc: the daemon derives OPc at installation.
  auto yaml = mcimd.dir() / "profile.yaml";
  std::ofstream(yaml) << "iccid: \"8949001234567890124\"\nimsi: \"001010123456780\"\n"
                         "k: 465b5ce8b199b49faa5f0a2ee238a6bc\nop: cdc202d5123e20f62b6d676ac72cb318\n";
  auto install = mcimd.mcimctl({"install", yaml.string()});
  ASSERT_EQ(install.exit_code, 0) << install.err << mcimd.log();
  auto c = make_challenge(mcimd, "000000000021");
  auto r = mcimd.mcimctl({"authenticate", "0", "--rand", c.rand, "--autn", c.autn, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  EXPECT_EQ(json::parse(r.out).value("res", ""), c.xres);
  ASSERT_EQ(mcimd.tpm2({"tpm2_pcrextend", "7:sha256=" + std::string(64, 'b')}).exit_code, 0);
  auto next = make_challenge(mcimd, "000000000041");
  auto refused = mcimd.mcimctl({"authenticate", "0", "--rand", next.rand, "--autn", next.autn});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("PlatformStateChanged"), std::string::npos) << refused.err;
}

TEST(TheDaemon, TellsSystemdItIsReadyAndKeepsPettingTheWatchdog) {
  TempDir dir;
  auto path = dir.path() / "notify";
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 100'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  McimdOptions options;
  options.daemon_env = {{"NOTIFY_SOCKET", path.string()}, {"WATCHDOG_USEC", "200000"}};
  McimdInstance mcimd(options);
  ASSERT_TRUE(mcimd.start()) << mcimd.log();
  std::string messages;
  auto collect = [&](std::chrono::milliseconds for_how_long) {
    auto end = std::chrono::steady_clock::now() + for_how_long;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) messages.append(buf, static_cast<std::size_t>(n)).push_back('\n');
    }
  };
  collect(std::chrono::milliseconds(1500));
  EXPECT_NE(messages.find("READY=1"), std::string::npos) << messages;
  EXPECT_NE(messages.find("STATUS=0 profile(s)"), std::string::npos) << messages;
  std::size_t pets = 0;
  for (auto at = messages.find("WATCHDOG=1"); at != std::string::npos; at = messages.find("WATCHDOG=1", at + 1)) ++pets;
  EXPECT_GE(pets, 3u) << "every 100 ms for a 200 ms watchdog: " << messages;
  EXPECT_EQ(mcimd.stop(), 0);
  collect(std::chrono::milliseconds(300));
  EXPECT_NE(messages.find("STOPPING=1"), std::string::npos) << messages;
  close(fd);
}
