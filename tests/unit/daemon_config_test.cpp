#include <gtest/gtest.h>

#include "daemon/config.hpp"

using namespace mcimd;
using mcimd::daemon::parse_config;

namespace {

// The message must name the file, the line and the key.
void expect_config_error(std::string_view yaml, std::string_view where, std::string_view key) {
  auto cfg = parse_config(yaml, "mcimd.yaml");
  ASSERT_FALSE(cfg) << yaml;
  EXPECT_EQ(cfg.error().code, Code::ConfigError);
  EXPECT_NE(cfg.error().message.find(where), std::string::npos) << cfg.error().message;
  EXPECT_NE(cfg.error().message.find(key), std::string::npos) << cfg.error().message;
}

}  // namespace

TEST(AConfig, FallsBackToDefaultsWhenEmpty) {
  auto cfg = parse_config("", "mcimd.yaml");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->store, "/var/lib/mcimd");
  EXPECT_EQ(cfg->tpm.tcti, "device:/dev/tpmrm0");
  EXPECT_EQ(cfg->tpm.pcrs, "sha256:7");
  EXPECT_EQ(cfg->tpm.nv_counter_index, 0x01004d43u);
}

TEST(AConfig, ReadsEveryKey) {
  auto cfg = parse_config(R"(store: /tmp/store
log-level: debug
queue-limit: 8
tpm:
  tcti: swtpm:host=127.0.0.1,port=2321
  require-resource-manager: false
  pcrs: sha256:7,14
  policy-authority: /etc/mcimd/policy-authority.pem
  allow-resettable-pcrs: true
  nv-counter-index: 0x01004d44
  deletion-counter-base: 0x01310000
  retries: 3
  key-protection: sealed
access:
  modem-users: [1000, root]
  modem-groups: [0]
  admin-users: []
  admin-groups: [root]
attestation:
  pcrs: [0, 7, 10]
  event-log: /tmp/log.bin
  ima-log: ""
  policy-trust: [/etc/mcimd/operator.pem]
)",
                          "mcimd.yaml");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->store, "/tmp/store");
  EXPECT_EQ(cfg->log_level, log::Level::Debug);
  EXPECT_EQ(cfg->queue_limit, 8u);
  EXPECT_EQ(cfg->tpm.tcti, "swtpm:host=127.0.0.1,port=2321");
  EXPECT_EQ(cfg->tpm.pcrs, "sha256:7,14");
  EXPECT_EQ(cfg->tpm.policy_authority, "/etc/mcimd/policy-authority.pem");
  EXPECT_TRUE(cfg->tpm.allow_resettable_pcrs);
  EXPECT_EQ(cfg->tpm.nv_counter_index, 0x01004d44u);
  EXPECT_EQ(cfg->tpm.deletion_counter_base, 0x01310000u);
  EXPECT_EQ(cfg->tpm.retries, 3u);
  EXPECT_EQ(cfg->tpm.key_protection, "sealed");
  EXPECT_EQ(cfg->access.modem_users, (std::vector<uid_t>{1000, 0}));
  EXPECT_EQ(cfg->access.modem_groups, (std::vector<gid_t>{0}));
  EXPECT_EQ(cfg->access.admin_groups, (std::vector<gid_t>{0}));
  EXPECT_EQ(cfg->attestation.pcrs, (std::vector<unsigned>{0, 7, 10}));
  EXPECT_EQ(cfg->attestation.event_log, "/tmp/log.bin");
  EXPECT_EQ(cfg->attestation.ima_log, "");
  EXPECT_EQ(cfg->attestation.policy_trust, (std::vector<std::filesystem::path>{"/etc/mcimd/operator.pem"}));
}

TEST(AConfig, RefusesAnUnknownKeyNamingItAndItsLine) {
  expect_config_error("store: /x\nstroe: /y\n", "mcimd.yaml:2", "stroe");
  expect_config_error("tpm:\n  tcti: device:/dev/tpmrm0\n  pcr: sha256:7\n", ":3", "tpm.pcr");
}

TEST(AConfig, RefusesBadValuesNamingKeyAndLine) {
  expect_config_error("store: relative/path\n", ":1", "store");
  expect_config_error("log-level: loud\n", ":1", "log-level");
  expect_config_error("queue-limit: -3\n", ":1", "queue-limit");
  expect_config_error("queue-limit: 0\n", ":1", "queue-limit");
  expect_config_error("tpm:\n  pcrs: md5:7\n", ":2", "tpm.pcrs");
  expect_config_error("tpm:\n  pcrs: sha256:24\n", ":2", "tpm.pcrs");
  expect_config_error("tpm:\n  pcrs: \"sha256:\"\n", ":2", "tpm.pcrs");
  expect_config_error("tpm:\n  nv-counter-index: 0x81000001\n", ":2", "tpm.nv-counter-index");
  expect_config_error("tpm:\n  nv-counter-index: 0x00001\n", ":2", "tpm.nv-counter-index");
  expect_config_error("tpm:\n  deletion-counter-base: 0x81000000\n", ":2", "tpm.deletion-counter-base");
  expect_config_error("tpm:\n  deletion-counter-base: 0x01ff0000\n", ":2", "tpm.deletion-counter-base");
  expect_config_error("tpm: [1, 2]\n", ":1", "tpm");
  expect_config_error("tpm:\n  key-protection: plain\n", ":2", "tpm.key-protection");
  expect_config_error("attestation:\n  pcrs: [7, 24]\n", ":2", "attestation.pcrs");
  expect_config_error("attestation:\n  event-log: relative.bin\n", ":2", "attestation.event-log");
  expect_config_error("attestation:\n  policy-trust: /one.pem\n", ":2", "attestation.policy-trust");
  expect_config_error("access:\n  modem-groups: [no-such-group-here]\n", ":2", "access.modem-groups");
  expect_config_error("access:\n  admin-users: root\n", ":2", "access.admin-users");
}

TEST(AConfig, ReportsYamlSyntaxErrorsWithTheLine) {
  auto cfg = parse_config("store: /x\ntpm: [unclosed\n", "mcimd.yaml");
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().code, Code::ConfigError);
  EXPECT_NE(cfg.error().message.find("mcimd.yaml:"), std::string::npos);
}

TEST(AConfig, RefusesAKeyGivenTwiceNamingItsSecondLine) {
  expect_config_error("store: /a\nlog-level: info\nstore: /b\n", "mcimd.yaml:3", "store");
  expect_config_error("tpm:\n  tcti: a\n  pcrs: sha256:7\n  tcti: b\n", "mcimd.yaml:4", "tpm.tcti");
}

TEST(AConfig, RefusesResettablePcrsOnlyByDefault) {
  auto cfg = parse_config("tpm:\n  policy-authority: /etc/mcimd/authority.pem\n", "mcimd.yaml");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_FALSE(cfg->tpm.allow_resettable_pcrs);
  expect_config_error("tpm:\n  allow-resettable-pcrs: perhaps\n", "mcimd.yaml:2", "tpm.allow-resettable-pcrs");
  expect_config_error("tpm:\n  policy-authority: authority.pem\n", "mcimd.yaml:2", "tpm.policy-authority");
}

TEST(AConfig, RefusesATctiWithoutAResourceManagerUnlessToldItIsMcimdsAlone) {
  expect_config_error("tpm:\n  tcti: swtpm:host=127.0.0.1,port=2321\n", "mcimd.yaml", "resource manager");
  expect_config_error("tpm:\n  tcti: device:/dev/tpm0\n", "mcimd.yaml", "tpm.tcti");
  for (const char* ok : {"device:/dev/tpmrm0", "device:/dev/tpmrm1", "tabrmd", "tabrmd:bus_type=system"}) {
    auto cfg = parse_config(std::string("tpm:\n  tcti: \"") + ok + "\"\n", "mcimd.yaml");
    EXPECT_TRUE(cfg) << ok << ": " << cfg.error().message;
  }
  auto allowed = parse_config("tpm:\n  tcti: swtpm:port=2321\n  require-resource-manager: false\n", "mcimd.yaml");
  ASSERT_TRUE(allowed) << allowed.error().message;
  EXPECT_FALSE(allowed->tpm.require_resource_manager);
}

TEST(AConfig, ReadsTheProvisioningAgentRoleAndTheTrustedOperators) {
  auto cfg = parse_config(R"(access:
  agent-users: [0]
  agent-groups: ["0"]
provisioning:
  operators:
    - id: "00101"
      anchors: /etc/mcimd/operators/00101.pem
    - id: Example Operator
      anchors: /etc/mcimd/operators/example.pem
)",
                          "mcimd.yaml");
  ASSERT_TRUE(cfg) << cfg.error().describe();
  EXPECT_EQ(cfg->access.agent_users, std::vector<uid_t>{0});
  EXPECT_EQ(cfg->access.agent_groups, std::vector<gid_t>{0});
  ASSERT_EQ(cfg->provisioning.operators.size(), 2u);
  EXPECT_EQ(cfg->provisioning.operators[0].id, "00101");
  EXPECT_EQ(cfg->provisioning.operators[0].anchors, "/etc/mcimd/operators/00101.pem");
  EXPECT_EQ(cfg->provisioning.operators[1].id, "Example Operator");
  EXPECT_TRUE(parse_config("", "mcimd.yaml")->provisioning.operators.empty()) << "no operator is trusted by default";
}

TEST(AConfig, RefusesBadOperatorEntriesNamingThem) {
  expect_config_error("provisioning:\n  operators: /etc/x.pem\n", "mcimd.yaml:2", "provisioning.operators");
  expect_config_error("provisioning:\n  operators:\n    - id: \"00101\"\n", "mcimd.yaml:3", "needs both id and anchors");
  expect_config_error("provisioning:\n  operators:\n    - id: \"\"\n      anchors: /a.pem\n", "mcimd.yaml:3",
                      "provisioning.operators[].id");
  expect_config_error("provisioning:\n  operators:\n    - id: a\n      anchors: /a.pem\n      url: x\n", "mcimd.yaml:5",
                      "provisioning.operators[].url");
  expect_config_error(
      "provisioning:\n  operators:\n    - id: a\n      anchors: /a.pem\n    - id: a\n      anchors: /b.pem\n",
      "mcimd.yaml:5", "given twice");
}

TEST(AConfig, LeavesTheOfonoCompatibilityOffUnlessAsked) {
  auto plain = parse_config("", "mcimd.yaml");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->dbus.ofono_compat);
  EXPECT_FALSE(plain->dbus.ofono_compat_mnc_length);
  auto cfg = parse_config("dbus:\n  ofono-compat: true\n  ofono-compat-mnc-length: 3\n", "mcimd.yaml");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_TRUE(cfg->dbus.ofono_compat);
  EXPECT_EQ(cfg->dbus.ofono_compat_mnc_length, 3);
}

TEST(AConfig, RefusesBadOfonoCompatValuesNamingThem) {
  expect_config_error("dbus:\n  ofono-compat: yes\n", ":2", "dbus.ofono-compat");
  expect_config_error("dbus:\n  ofono-compat-mnc-length: 4\n", ":2", "dbus.ofono-compat-mnc-length");
  expect_config_error("dbus:\n  ofono-compat-mnc-length: 1\n", ":2", "dbus.ofono-compat-mnc-length");
  expect_config_error("dbus:\n  ofono: true\n", ":2", "dbus.ofono");
}
