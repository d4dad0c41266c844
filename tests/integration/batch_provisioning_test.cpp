// mcim-operator batch at factory scale: 1,000 enrolment records — 997 gateways made in software
// and 3 real mcimd instances on swtpm whose requests come from `mcimctl package request` — run
// through the real binary. Every device gets one package; the real gateways, still running with
// their device nonces in memory, install theirs, the operator verifies their receipts, and one
// answers AKA with the K and OPc the operator's AuC record holds.
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "operator/package_builder.hpp"
#include "operator/registry.hpp"
#include "protocol/provisioning.hpp"
#include "tests/support/mcimd_instance.hpp"
#include "tests/support/synthetic_devices.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::test;
using nlohmann::json;

namespace {

constexpr std::size_t kRecords = 1000;
constexpr std::size_t kRealGateways = 3;
constexpr const char* kOperator = "00101";

std::vector<std::string> fields_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

struct OperatorPki {
  TempDir dir;
  TestPki pki{"operator 00101"};
  std::filesystem::path anchors = pki.write_root(dir.path(), "operator-00101");
  Credential::Files signer = pki.document_signer("operator 00101 packages").write(dir.path(), "signer");
};


}  // namespace

TEST(ABatchOfAThousandDevices, BuildsEveryPackageAndTheRealGatewaysInstallTheirs) {
  OperatorPki pki;
  TempDir work;
  const auto requests = work.path() / "requests";
  std::filesystem::create_directories(requests);

  // The real gateways: each answers a factory nonce with its own request, and keeps running.
  std::vector<std::unique_ptr<McimdInstance>> gateways;
  std::vector<protocol::PackageRequest> real;
  for (std::size_t i = 0; i < kRealGateways; ++i) {
    auto& g = *gateways.emplace_back(std::make_unique<McimdInstance>(with_operator(pki.anchors)));
    ASSERT_TRUE(g.start()) << g.log();
    Bytes nonce(protocol::kProvisioningNonceSize);
    ASSERT_EQ(RAND_bytes(nonce.data(), static_cast<int>(nonce.size())), 1);
    auto r = g.mcimctl({"package", "request", "--session", "factory", "--nonce", to_hex(nonce)});
    ASSERT_EQ(r.exit_code, 0) << r.err << g.log();
    auto request = protocol::package_request_from_json(r.out);
    ASSERT_TRUE(request) << request.error().message;
    real.push_back(*request);
    std::ofstream(requests / ("real-" + std::to_string(i) + ".json")) << r.out;
  }

  // The software gateways, and the records: the real ones first, in the middle and last.
  const auto generation_start = std::chrono::steady_clock::now();
  SyntheticFactory factory;
  std::vector<std::string> devices;
  std::vector<std::size_t> real_rows{0, kRecords / 2, kRecords - 1};
  {
    std::ofstream csv(work.path() / "records.csv");
    csv << "request\n";
    std::size_t next_real = 0, synthetic = 0;
    for (std::size_t row = 0; row < kRecords; ++row) {
      if (next_real < kRealGateways && row == real_rows[next_real]) {
        devices.push_back(real[next_real].device);
        csv << "requests/real-" << next_real++ << ".json\n";
        continue;
      }
      auto d = factory.make_device();
      devices.push_back(d.request.device);
      const std::string name = "requests/sw-" + std::to_string(synthetic++) + ".json";
      SyntheticFactory::write(work.path() / name, d.request);
      csv << name << "\n";
    }
  }
  const auto generated = std::chrono::steady_clock::now() - generation_start;
  ASSERT_EQ(std::set<std::string>(devices.begin(), devices.end()).size(), kRecords) << "every AK distinct";

  // The batch, through the binary, on every core.
  const std::string registry = "sqlite:" + (work.path() / "registry.db").string();
  const auto results = work.path() / "results.txt";
  const auto batch_start = std::chrono::steady_clock::now();
  auto r = run({binary("operator/mcim-operator"), "batch", (work.path() / "records.csv").string(), "--registry",
                registry, "--operator-id", kOperator, "--signer-key", pki.signer.key.string(), "--signer-cert",
                pki.signer.cert.string(), "--auc", (work.path() / "auc").string(), "--job", "line-7",
                "--out", (work.path() / "out").string(), "--results", results.string(), "--package-hours", "720"},
               {}, std::chrono::minutes(4));
  const auto batch_time = std::chrono::steady_clock::now() - batch_start;
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::cerr << "[ batch    ] " << kRecords << " records made in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(generated).count() << " ms, batch ran "
            << std::chrono::duration_cast<std::chrono::milliseconds>(batch_time).count() << " ms: " << r.err;
  EXPECT_NE(r.err.find("1000/1000 done (0 failed)"), std::string::npos) << r.err;

  // One ok line a device, in input order; one package each, none sharing an id or an ICCID.
  std::vector<std::string> lines;
  {
    std::istringstream in(slurp(results));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), kRecords);
  auto reg = op::Registry::open(registry);
  ASSERT_TRUE(reg) << reg.error().message;
  std::set<std::string> package_ids, iccids;
  std::map<std::string, op::PackageRecord> issued;
  for (std::size_t i = 0; i < kRecords; ++i) {
    auto f = fields_of(lines[i]);
    ASSERT_EQ(f.size(), 5u) << lines[i];
    ASSERT_EQ(f[0], devices[i]);
    ASSERT_EQ(f[1], "ok") << lines[i];
    auto packages = reg->packages_of(*from_hex(devices[i], "device"));
    ASSERT_TRUE(packages);
    ASSERT_EQ(packages->size(), 1u) << devices[i];
    const auto& p = packages->front();
    EXPECT_EQ(p.spec.package_id, f[2]);
    EXPECT_EQ(p.spec.iccid, f[3]);
    EXPECT_GE(p.spec.counter, 1u);
    EXPECT_EQ(p.spec.expires - p.spec.issued, std::chrono::hours{720});
    package_ids.insert(p.spec.package_id);
    iccids.insert(p.spec.iccid);
    issued.emplace(devices[i], p);
  }
  EXPECT_EQ(package_ids.size(), kRecords);
  EXPECT_EQ(iccids.size(), kRecords);

  // The real gateways install their packages; the operator verifies each receipt.
  std::string last_profile;
  for (std::size_t i = 0; i < kRealGateways; ++i) {
    auto& g = *gateways[i];
    const auto& device = real[i].device;
    const auto& record = issued.at(device);
    const auto package = work.path() / "out" / (device + ".jws");
    const auto receipt_file = g.dir() / "receipt.json";
    auto installed = g.mcimctl({"package", "install", package.string(), "--receipt", receipt_file.string()});
    ASSERT_EQ(installed.exit_code, 0) << installed.err << g.log();
    auto receipt = protocol::install_receipt_from_json(slurp(receipt_file));
    ASSERT_TRUE(receipt) << receipt.error().message;
    auto body = op::verify_install_receipt(*receipt, real[i].evidence.ak_public,
                                           {record.spec.package_id, device, record.spec.counter,
                                            record.spec.package_sha256, record.spec.iccid});
    ASSERT_TRUE(body) << body.error().message;
    EXPECT_EQ(body->profile_class, "operational");
    last_profile = std::to_string(body->profile);
  }

  // AKA on the last one with K and OPc from the operator's AuC record (first SQN: SEQ 1, IND 0).
  auto& g = *gateways.back();
  auto auc = json::parse(slurp(work.path() / "auc" / (issued.at(real.back().device).spec.iccid + ".json")));
  Bytes rand(16);
  ASSERT_EQ(RAND_bytes(rand.data(), 16), 1);
  auto vector = g.operator_tool({"milenage", "--k", auc.at("k"), "--opc", auc.at("opc"), "--rand", to_hex(rand),
                                 "--sqn", "000000000020", "--amf", "8000", "--json"});
  ASSERT_EQ(vector.exit_code, 0) << vector.err;
  auto expected = json::parse(vector.out);
  auto aka = g.mcimctl({"authenticate", last_profile, "--rand", to_hex(rand), "--autn", expected.at("autn"), "--json"});
  ASSERT_EQ(aka.exit_code, 0) << aka.err << g.log();
  EXPECT_EQ(json::parse(aka.out).value("res", ""), expected.at("res"));
}
