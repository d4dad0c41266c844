// mcim-operator batch without a TPM: the enrolment records' parsing (CSV, YAML, errors naming
// file:line), the result lines, and whole runs of the binary over gateways made in software —
// bad records failing alone with their named error, and a run killed midway resumed so that
// every device gets exactly one package.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "operator/batch.hpp"
#include "operator/batch_input.hpp"
#include "operator/registry.hpp"
#include "tests/support/process.hpp"
#include "tests/support/synthetic_devices.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_pki.hpp"

using namespace mcimd;
using namespace mcimd::test;

namespace {

const std::string kBinary = MCIMD_BINARY_DIR "/operator/mcim-operator";

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

// A package's header as the device reads it: the JWS payload.
protocol::PackageHeader header_of(const std::filesystem::path& package) {
  std::ifstream in(package);
  const std::string jws((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto first = jws.find('.'), second = jws.find('.', first + 1);
  auto payload = base64url_decode(std::string_view(jws).substr(first + 1, second - first - 1), "payload");
  if (!payload) throw std::runtime_error(payload.error().message);
  auto header = protocol::package_header_from_json(
      std::string_view(reinterpret_cast<const char*>(payload->data()), payload->size()));
  if (!header) throw std::runtime_error(header.error().message);
  return *header;
}

void expect_error(const Result<std::vector<op::EnrolmentRecord>>& r, const std::string& where, const std::string& says) {
  ASSERT_FALSE(r) << where;
  EXPECT_EQ(r.error().code, Code::InvalidArgument);
  EXPECT_TRUE(r.error().message.starts_with(where + ": ")) << r.error().message;
  EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
}

}  // namespace

TEST(EnrolmentRecords, ParseFromCsvWithPathsRelativeToTheFile) {
  auto r = op::parse_enrolment_csv("request,subscription\n\nreq/a.json,\n/abs/b.json , sub-7\n", "in.csv", "/data");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].line, 3u);
  EXPECT_EQ((*r)[0].request, "req/a.json");
  EXPECT_EQ((*r)[0].request_path, std::filesystem::path("/data/req/a.json"));
  EXPECT_FALSE((*r)[0].subscription);
  EXPECT_EQ((*r)[1].request_path, std::filesystem::path("/abs/b.json"));
  EXPECT_EQ((*r)[1].subscription, "sub-7");
}

TEST(EnrolmentRecords, ParseFromYamlWithTheSameKeys) {
  auto r = op::parse_enrolment_yaml("- request: a.json\n  ek_public: a.ek\n- request: b.json\n  subscription: s1\n",
                                    "in.yaml", "/d");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].ek_public, std::filesystem::path("/d/a.ek"));
  EXPECT_EQ((*r)[1].line, 3u);
  EXPECT_EQ((*r)[1].subscription, "s1");
}

TEST(EnrolmentRecords, AreRefusedNamingFileAndLine) {
  expect_error(op::parse_enrolment_csv("", "in.csv", "."), "in.csv:1", "header");
  expect_error(op::parse_enrolment_csv("subscription\ns1\n", "in.csv", "."), "in.csv:1", "no 'request' column");
  expect_error(op::parse_enrolment_csv("request,colour\na,b\n", "in.csv", "."), "in.csv:1", "unknown column 'colour'");
  expect_error(op::parse_enrolment_csv("request,request\na,b\n", "in.csv", "."), "in.csv:1", "named twice");
  expect_error(op::parse_enrolment_csv("request\n", "in.csv", "."), "in.csv:1", "no records");
  expect_error(op::parse_enrolment_csv("request,subscription\na,s\nb\n", "in.csv", "."), "in.csv:3",
               "1 fields, the header (line 1) names 2");
  expect_error(op::parse_enrolment_csv("request\na\nb\na\n", "in.csv", "."), "in.csv:4", "listed twice (first at line 2)");
  expect_error(op::parse_enrolment_csv("request,subscription\na,bad id!\n", "in.csv", "."), "in.csv:2", "subscription");
  expect_error(op::parse_enrolment_csv("request,subscription\n,s\n", "in.csv", "."), "in.csv:2", "no request");
  expect_error(op::parse_enrolment_csv("request\n" + std::string(600, 'x') + "\n", "in.csv", "."), "in.csv:2",
               "at most 512 bytes");
  expect_error(op::parse_enrolment_yaml("request: a\n", "in.yaml", "."), "in.yaml:1", "a list of records");
  expect_error(op::parse_enrolment_yaml("- request: a\n- colour: b\n", "in.yaml", "."), "in.yaml:2",
               "unknown column 'colour'");
  expect_error(op::parse_enrolment_yaml("- request: a\n- subscription: s\n", "in.yaml", "."), "in.yaml:2",
               "no request");
  expect_error(op::parse_enrolment_yaml("- request: [a\n", "in.yaml", "."), "in.yaml:2", "");
  expect_error(op::parse_enrolment_yaml("- request: a\n- request: a\n", "in.yaml", "."), "in.yaml:2",
               "listed twice (first at line 1)");
  auto ext = op::load_enrolment_records("records.txt");
  ASSERT_FALSE(ext);
  EXPECT_NE(ext.error().message.find(".csv, .yaml or .yml"), std::string::npos);
}

TEST(BatchResultLines, SayOkWithThePackageOrTheNamedErrorOnOneLine) {
  EXPECT_EQ(op::result_ok_line("000bab", "bp-1", "8949000000000000001", "/out/000bab.jws"),
            "000bab ok bp-1 8949000000000000001 /out/000bab.jws");
  EXPECT_EQ(op::result_error_line("000bab", Error{Code::WrongDevice, "two\nlines", {}}),
            "000bab error WrongDevice two lines");
  EXPECT_EQ(op::result_error_line("-", Error{Code::InvalidArgument, std::string(5000, 'x'), {}}).size(),
            op::kMaxBatchResultSize);
}

TEST(BatchProgress, ShowsDoneFailedRateAndEta) {
  op::BatchProgress p;
  p.total = 1000;
  p.done = 400;
  p.failed = 3;
  p.done_now = 300;
  p.elapsed = std::chrono::seconds{10};
  EXPECT_EQ(op::format_progress(p), "400/1000 done (3 failed), 30.0/s, ETA 0:20");
  p.done = p.total;
  EXPECT_EQ(op::format_progress(p), "1000/1000 done (3 failed), 30.0/s, ETA -");
}

namespace {

// A factory's records for `count` software gateways, and the operator's signer and directories.
class ABatchRun : public ::testing::Test {
 protected:
  ABatchRun() {
    auto files = pki_.document_signer("operator 00101 packages").write(dir_.path(), "signer");
    signer_key_ = files.key;
    signer_cert_ = files.cert;
    std::filesystem::create_directories(dir_.path() / "requests");
  }

  // Writes a device's request and returns its path relative to the records file.
  std::string add(const protocol::PackageRequest& request, const std::string& name) {
    const std::string relative = "requests/" + name + ".json";
    SyntheticFactory::write(dir_.path() / relative, request);
    return relative;
  }
  std::string add_device(std::size_t i) {
    auto d = factory_.make_device();
    devices_.push_back(d.request.device);
    return add(d.request, "dev-" + std::to_string(i));
  }
  void write_records(const std::vector<std::string>& requests) {
    std::ofstream out(records());
    out << "request\n";
    for (const auto& r : requests) out << r << "\n";
  }

  std::filesystem::path records() const { return dir_.path() / "records.csv"; }
  std::filesystem::path results() const { return dir_.path() / "results.txt"; }
  std::string registry_url() const { return "sqlite:" + (dir_.path() / "registry.db").string(); }
  std::vector<std::string> argv(const std::string& jobs = "2") const {
    return {kBinary, "batch", records().string(), "--registry", registry_url(), "--operator-id", "00101",
            "--signer-key", signer_key_.string(), "--signer-cert", signer_cert_.string(), "--auc",
            (dir_.path() / "auc").string(), "--job", "factory-1", "--out", (dir_.path() / "out").string(),
            "--results", results().string(), "--jobs", jobs};
  }
  op::Registry registry() const { return std::move(*op::Registry::open(registry_url())); }

  TempDir dir_;
  TestPki pki_{"operator 00101"};
  std::filesystem::path signer_key_, signer_cert_;
  SyntheticFactory factory_;
  std::vector<std::string> devices_;
};

}  // namespace

TEST_F(ABatchRun, FailsEachBadRecordWithItsNamedErrorAndBuildsTheOthers) {
  std::vector<std::string> requests;
  for (std::size_t i = 0; i < 3; ++i) requests.push_back(add_device(i));
  // A certification changed after the AK signed it.
  auto tampered = factory_.make_device();
  tampered.request.srk_certification.signature[tampered.request.srk_certification.signature.size() - 3] ^= 1;
  requests.push_back(add(tampered.request, "tampered"));
  // A device the registry knows with one AK, whose request comes signed by another AK.
  auto enrolled = factory_.make_device();
  {
    op::DeviceRecord rec;
    rec.ak_name = *protocol::object_name(enrolled.request.evidence.ak_public);
    rec.ak_public = enrolled.request.evidence.ak_public;
    rec.enrolled = true;
    rec.uncertified_ek = true;
    auto reg = registry();
    ASSERT_TRUE(reg.store(rec));
  }
  auto impostor = factory_.make_device();
  impostor.request.device = enrolled.request.device;
  requests.push_back(add(impostor.request, "impostor"));
  // A file that is not a package request.
  std::ofstream(dir_.path() / "requests/garbage.json") << "{\"format\": ";
  requests.push_back("requests/garbage.json");
  write_records(requests);

  auto r = run(argv());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto lines = lines_of(results());
  ASSERT_EQ(lines.size(), 6u) << r.out << r.err;
  for (std::size_t i = 0; i < 3; ++i) {
    auto f = fields_of(lines[i]);
    ASSERT_EQ(f.size(), 5u) << lines[i];
    EXPECT_EQ(f[0], devices_[i]);
    EXPECT_EQ(f[1], "ok");
    EXPECT_TRUE(std::filesystem::exists(f[4])) << lines[i];
  }
  EXPECT_TRUE(lines[3].starts_with(tampered.request.device + " error SignatureInvalid ")) << lines[3];
  EXPECT_TRUE(lines[4].starts_with(enrolled.request.device + " error WrongDevice ")) << lines[4];
  EXPECT_TRUE(lines[5].starts_with("- error InvalidArgument requests/garbage.json: ")) << lines[5];
  auto reg = registry();
  EXPECT_TRUE(reg.packages_of(*protocol::object_name(enrolled.request.evidence.ak_public))->empty());
}

TEST_F(ABatchRun, KilledMidwayResumesAndGivesEveryDeviceExactlyOnePackage) {
  constexpr std::size_t kDevices = 120;
  std::vector<std::string> requests;
  for (std::size_t i = 0; i < kDevices; ++i) requests.push_back(add_device(i));
  write_records(requests);

  {
    Process batch({argv(), {}, dir_.path() / "first.out", dir_.path() / "first.err"});
    auto reg = registry();
    auto finished = [&] {
      auto items = reg.batch_items("factory-1");
      if (!items) return false;
      return std::count_if(items->begin(), items->end(),
                           [](const op::BatchItem& i) { return i.status == op::BatchStatus::Done; }) >= 20;
    };
    ASSERT_TRUE(wait_until(finished, std::chrono::seconds(60)));
    batch.stop(SIGKILL);
  }
  {
    auto reg = registry();
    auto items = *reg.batch_items("factory-1");
    auto count = [&](op::BatchStatus s) {
      return std::count_if(items.begin(), items.end(), [s](const op::BatchItem& i) { return i.status == s; });
    };
    EXPECT_LT(count(op::BatchStatus::Done), static_cast<long>(kDevices)) << "the run was not interrupted";
    std::cerr << "[ killed   ] " << count(op::BatchStatus::Done) << " done, " << count(op::BatchStatus::Running)
              << " running\n";
  }

  auto r = run(argv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = lines_of(results());
  ASSERT_EQ(lines.size(), kDevices);
  auto reg = registry();
  std::set<std::string> packages;
  for (std::size_t i = 0; i < kDevices; ++i) {
    auto f = fields_of(lines[i]);
    ASSERT_EQ(f.size(), 5u) << lines[i];
    EXPECT_EQ(f[0], devices_[i]);
    EXPECT_EQ(f[1], "ok") << lines[i];
    auto issued = reg.packages_of(*from_hex(devices_[i], "device"));
    ASSERT_TRUE(issued);
    ASSERT_EQ(issued->size(), 1u) << devices_[i];
    EXPECT_EQ((*issued)[0].spec.package_id, f[2]);
    packages.insert(f[2]);
  }
  EXPECT_EQ(packages.size(), kDevices);

  // Once more: the finished job changes nothing and writes the same results.
  std::filesystem::remove(results());
  auto again = run(argv());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(lines_of(results()), lines);
  for (const auto& d : devices_) EXPECT_EQ(reg.packages_of(*from_hex(d, "device"))->size(), 1u);
}

TEST_F(ABatchRun, LocksEveryPackageToTheOperatorUntilTheGivenTime) {
  write_records({add_device(0)});
  auto args = argv();
  args.insert(args.end(), {"--locked-until", "2030-01-01T00:00:00Z"});
  auto r = run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = fields_of(lines_of(results()).at(0));
  ASSERT_EQ(f.size(), 5u);
  const auto header = header_of(f[4]);
  ASSERT_TRUE(header.rules.locked_until);
  EXPECT_EQ(protocol::format_timestamp(*header.rules.locked_until), "2030-01-01T00:00:00Z");
}

TEST_F(ABatchRun, RefusesALockThatIsNotAnRfc3339Time) {
  write_records({add_device(0)});
  auto args = argv();
  args.insert(args.end(), {"--locked-until", "next year"});
  auto r = run(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--locked-until"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(results()));
}

// The new operator of a change of subscription: its registry has never given this device a
// package, the device has accepted four from another operator.
TEST_F(ABatchRun, CountsOnFromTheCounterTheDeviceAcceptedFromAnotherOperator) {
  auto device = factory_.make_device();
  device.request.counter = 4;
  write_records({add(device.request, "moved")});
  auto r = run(argv());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = fields_of(lines_of(results()).at(0));
  ASSERT_EQ(f.size(), 5u);
  ASSERT_EQ(f[1], "ok") << lines_of(results())[0];
  const auto header = header_of(f[4]);
  EXPECT_EQ(header.counter, 5u);
  EXPECT_FALSE(header.rules.locked_until) << "no lock unless the job asks for one";
}
