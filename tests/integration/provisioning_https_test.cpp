// Remote provisioning as deployed: mcimd on swtpm behind a private bus, the provisioning agent
// (mcimctl provision → mcimd-agent) and the reference operator (mcim-operator serve) over
// loopback HTTPS with client certificates. The gateway goes from its bootstrap profile to an
// operational one; the operator records the verified receipt; the new profile answers AKA with
// the K/OPc the operator's AuC holds. An operator whose TLS certificate the agent does not trust
// gets nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "operator/registry.hpp"
#include "tests/support/mcimd_instance.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::test;
using nlohmann::json;

namespace {


// The operator's PKIs: one for what gateways trust (package signer, TLS server), one for the
// agents' client certificates. Written before the daemon's config names the anchor.
struct OperatorPki {
  TempDir dir;
  TestPki pki{"operator 00101"};
  TestPki agents{"operator 00101 agents"};
  std::filesystem::path anchors = pki.write_root(dir.path(), "operator-root");
  Credential::Files signer = pki.document_signer("operator 00101 packages").write(dir.path(), "signer");
  Credential::Files server = pki.tls_server().write(dir.path(), "server");
  std::filesystem::path agents_root = agents.write_root(dir.path(), "agents-root");
  Credential::Files client = agents.tls_client("gateway 1").write(dir.path(), "client");
};


class AGatewayAndItsOperator : public ::testing::Test {
 protected:
  AGatewayAndItsOperator() : mcimd(with_operator(ops.anchors)) {}

  void SetUp() override {
    ASSERT_TRUE(mcimd.start()) << mcimd.log();
    auto yaml = mcimd.dir() / "bootstrap.yaml";
    std::ofstream(yaml) << kBootstrapProfileYaml;
    auto r = mcimd.mcimctl({"install", yaml.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err << mcimd.log();
  }

  // mcim-operator serve on a free port; returns its URL once it listens.
  std::string start_operator(const std::filesystem::path& server_chain, const std::filesystem::path& server_key) {
    const auto port_file = work.path() / "port";
    server = std::make_unique<Process>(ProcessOptions{
        {binary("operator/mcim-operator").string(), "serve", "--state", (work.path() / "operator").string(),
         "--operator-id", "00101", "--signer-key", ops.signer.key.string(), "--signer-cert", ops.signer.chain.string(),
         "--tls-cert", server_chain.string(), "--tls-key", server_key.string(), "--client-ca",
         ops.agents_root.string(), "--port", "0", "--port-file", port_file.string(), "--auc",
         (work.path() / "auc").string(), "--allow-uncertified-ek"},
        {},
        work.path() / "operator.out",
        work.path() / "operator.err"});
    for (int i = 0; i < 200 && !std::filesystem::exists(port_file); ++i) {
      if (!server->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!std::filesystem::exists(port_file)) throw std::runtime_error("mcim-operator serve did not start: " + operator_log());
    return "https://127.0.0.1:" + std::to_string(std::stoi(slurp(port_file)));
  }
  std::string operator_log() { return slurp(work.path() / "operator.out") + slurp(work.path() / "operator.err"); }

  // The agent's configuration; its state directory is work/<state>.
  std::filesystem::path agent_config(const std::string& url, const std::filesystem::path& ca,
                                     const std::string& subscription = "", const std::string& state = "agent") {
    const auto config = work.path() / (state + ".yaml");
    std::ofstream(config, std::ios::trunc)
        << "operator-url: " << url << "\n"
        << "ca-bundle: " << ca.string() << "\n"
        << "client-certificate: " << ops.client.cert.string() << "\n"
        << "client-key: " << ops.client.key.string() << "\n"
        << "state-dir: " << (work.path() / state).string() << "\n"
        << (subscription.empty() ? "" : "subscription: " + subscription + "\n")
        << "ek-type: ecc\nconnect-timeout: 5s\ntimeout: 30s\n"
        << "retries: {attempts: 2, initial-backoff: 100ms, max-backoff: 200ms, give-up-after: 5s}\n";
    return config;
  }
  std::vector<std::string> provision_argv(const std::string& url, const std::filesystem::path& config) {
    return {binary("tools/mcimctl").string(), "provision", "--operator", url, "--config", config.string()};
  }
  std::map<std::string, std::string> agent_env() {
    auto env = mcimd.bus_env();
    env["MCIMD_AGENT"] = binary("agent/mcimd-agent").string();
    return env;
  }
  RunResult provision(const std::string& url, const std::filesystem::path& ca, const std::string& subscription = "") {
    return run(provision_argv(url, agent_config(url, ca, subscription)), agent_env(), std::chrono::seconds(120));
  }

  json profiles() { return json::parse(mcimd.mcimctl({"--json", "list"}).out).at("profiles"); }

  OperatorPki ops;
  McimdInstance mcimd;
  TempDir work;
  std::unique_ptr<Process> server;
};

}  // namespace

TEST_F(AGatewayAndItsOperator, ProvisionsTheGatewayOverTlsAndRecordsTheVerifiedReceipt) {
  const std::string url = start_operator(ops.server.chain, ops.server.key);
  auto r = provision(url, ops.anchors);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\n--- operator:\n" << operator_log() << "\n--- mcimd:\n" << mcimd.log();

  // The gateway: operational profile active, bootstrap kept disabled for fallback.
  auto list = profiles();
  ASSERT_EQ(list.size(), 2u) << list.dump();
  EXPECT_EQ(list[0].value("class", ""), "bootstrap");
  EXPECT_EQ(list[0].value("state", ""), "disabled");
  EXPECT_EQ(list[1].value("class", ""), "operational");
  EXPECT_EQ(list[1].value("state", ""), "enabled");
  EXPECT_TRUE(list[1].value("active", false));
  const std::string iccid = list[1].value("iccid", "");

  // The operator: one package for the device, installed, its receipt verified and recorded.
  server->stop(SIGTERM);
  EXPECT_NE(operator_log().find("Enrolled device"), std::string::npos) << operator_log();
  EXPECT_NE(operator_log().find("installed on device"), std::string::npos) << operator_log();
  auto registry = op::Registry::open_state_dir(work.path() / "operator", /*create=*/false);
  ASSERT_TRUE(registry) << registry.error().message;
  auto devices = registry->list();
  ASSERT_TRUE(devices && devices->size() == 1u);
  auto packages = registry->packages_of(devices->front().ak_name);
  ASSERT_TRUE(packages && packages->size() == 1u);
  EXPECT_EQ(packages->front().state, op::PackageState::Installed);
  EXPECT_TRUE(packages->front().receipt.has_value());
  EXPECT_EQ(packages->front().spec.iccid, iccid);

  // The network side: AKA with the K/OPc the operator's AuC keeps for that ICCID.
  auto auc = json::parse(slurp(work.path() / "auc" / (iccid + ".json")));
  const std::string rand = "00112233445566778899aabbccddeeff";
  auto vector = mcimd.operator_tool({"milenage", "--k", auc.at("k"), "--opc", auc.at("opc"), "--rand", rand, "--sqn",
                                     "000000000040", "--amf", "8000", "--json"});
  ASSERT_EQ(vector.exit_code, 0) << vector.err;
  auto v = json::parse(vector.out);
  auto aka = mcimd.mcimctl({"authenticate", std::to_string(list[1].value("index", 0)), "--rand", rand, "--autn",
                            v.at("autn"), "--json"});
  ASSERT_EQ(aka.exit_code, 0) << aka.err << mcimd.log();
  EXPECT_EQ(json::parse(aka.out).value("res", ""), v.value("res", "x"));

  // Run again: already provisioned, nothing changes.
  const std::string store = slurp(mcimd.store() / "store.json");
  EXPECT_EQ(provision(url, ops.anchors).exit_code, 0);
  EXPECT_EQ(slurp(mcimd.store() / "store.json"), store);
}

TEST_F(AGatewayAndItsOperator, RefusesAnOperatorWhoseServerCertificateItDoesNotTrust) {
  // The server presents a certificate from a CA the agent was not given.
  TestPki impostor("impostor");
  auto files = impostor.tls_server().write(ops.dir.path(), "impostor");
  const std::string url = start_operator(files.chain, files.key);
  const std::string store = slurp(mcimd.store() / "store.json");
  auto r = provision(url, ops.anchors);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("UntrustedServer"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(profiles().size(), 1u);
  EXPECT_EQ(slurp(mcimd.store() / "store.json"), store);
  EXPECT_EQ(operator_log().find("Enrolled"), std::string::npos) << operator_log();
}

TEST_F(AGatewayAndItsOperator, LinksTheGatewayToTheSubscriptionTheSubscriberChose) {
  // A subscription the operator sold already: its ICCID, IMSI and keys (TS 35.208 set 1).
  auto added = mcimd.operator_tool({"subscription-add", "--state", (work.path() / "operator").string(), "--id",
                                    "plan-7", "--operator-id", "00101", "--iccid", "8949001111111111111", "--imsi",
                                    "001010000000777", "--k", kSet1K, "--opc", kSet1Opc, "--auc",
                                    (work.path() / "auc").string()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "plan-7\n");
  const std::string url = start_operator(ops.server.chain, ops.server.key);
  auto r = provision(url, ops.anchors, "plan-7");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\n--- operator:\n" << operator_log() << "\n--- mcimd:\n" << mcimd.log();
  auto list = profiles();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].value("iccid", ""), "8949001111111111111");
  EXPECT_EQ(list[1].value("imsi", ""), "001010000000777");
  // The network authenticates it with the subscription's own keys.
  auto c = make_challenge(mcimd, "000000000040");
  auto aka = mcimd.mcimctl({"authenticate", std::to_string(list[1].value("index", 0)), "--rand", c.rand, "--autn",
                            c.autn, "--json"});
  ASSERT_EQ(aka.exit_code, 0) << aka.err;
  EXPECT_EQ(json::parse(aka.out).value("res", ""), c.xres);

  // A subscription id already taken is refused by name, and leaves no AuC record behind.
  auto again = mcimd.operator_tool({"subscription-add", "--state", (work.path() / "operator").string(), "--id",
                                    "plan-7", "--operator-id", "00101", "--iccid", "8949001111111111112", "--imsi",
                                    "001010000000778", "--k", kSet1K, "--opc", kSet1Opc, "--auc",
                                    (work.path() / "auc").string()});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("AlreadyExists"), std::string::npos) << again.err;
  EXPECT_FALSE(std::filesystem::exists(work.path() / "auc" / "8949001111111111112.json"));
}

// The agent killed (SIGKILL) at points spread over a whole run, then run again with the same state
// directory: every time the gateway ends with exactly one more operational profile and the
// operator with exactly one more installed package, whatever step the kill interrupted (enrolment,
// session, between the package and its install, during InstallPackage, before the receipt).
TEST_F(AGatewayAndItsOperator, EndsProvisionedOnceWhereverTheAgentIsKilled) {
  const std::string url = start_operator(ops.server.chain, ops.server.key);
  auto expect_counts = [&](std::size_t n) {
    std::size_t operational = 0;
    for (const auto& p : profiles()) operational += p.value("class", "") == "operational";
    EXPECT_EQ(operational, n) << profiles().dump();
    auto registry = op::Registry::open_state_dir(work.path() / "operator", /*create=*/false);
    ASSERT_TRUE(registry) << registry.error().message;
    auto devices = registry->list();
    ASSERT_TRUE(devices && devices->size() == 1u);
    auto packages = registry->packages_of(devices->front().ak_name);
    ASSERT_TRUE(packages);
    std::size_t installed = 0;
    for (const auto& p : *packages) installed += p.state == op::PackageState::Installed;
    EXPECT_EQ(installed, n);
  };
  // One whole run, timed: the kills below are placed at fractions of it, whatever the machine's load.
  const auto t0 = std::chrono::steady_clock::now();
  auto first = run(provision_argv(url, agent_config(url, ops.anchors, "", "agent-0")), agent_env(), std::chrono::seconds(120));
  const auto whole = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  expect_counts(1);

  std::size_t interrupted = 0;
  std::string reached;  // where each killed run had got to, for the failure message
  const std::vector<int> percent = {10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 93, 96, 98, 99};
  for (std::size_t i = 1; i <= percent.size(); ++i) {
    const auto delay = whole * percent[i - 1] / 100.0;
    const std::string state = "agent-" + std::to_string(i);  // a gateway provisioned anew
    const auto config = agent_config(url, ops.anchors, "", state);
    {
      Process agent(ProcessOptions{provision_argv(url, config), agent_env(), work.path() / (state + ".out"),
                                   work.path() / (state + ".err")});
      std::this_thread::sleep_for(delay);
      if (agent.running()) ++interrupted;
      agent.stop(SIGKILL);
    }
    // Where it got to: the step its state file had saved (absent: not even enrolled).
    const auto saved = json::parse(slurp(work.path() / state / "state.json"), nullptr, false);
    std::string step = "nothing saved";
    if (saved.is_object() && saved.contains("run") && saved["run"].is_object())
      step = "run at " + saved["run"].value("step", "?");
    else if (saved.is_object() && !saved.value("enrolments", json::array()).empty())
      step = "enrolled";
    reached += " " + std::to_string(percent[i - 1]) + "%:" + step + ";";
    SCOPED_TRACE("killed at " + std::to_string(percent[i - 1]) + "% of a run; killed runs reached:" + reached);
    auto r = run(provision_argv(url, config), agent_env(), std::chrono::seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\n--- operator:\n" << operator_log() << "\n--- mcimd:\n"
                              << mcimd.log();
    expect_counts(i + 1);
  }
  // The kills landed inside runs, not only after them.
  EXPECT_GE(interrupted, percent.size() / 2) << reached;
  RecordProperty("killed_runs_reached", reached);
}
