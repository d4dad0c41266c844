// The operator's registry, every behaviour against both backends: a SQLite file in a temporary
// directory and a private PostgreSQL server (tests/support/postgres), each test on a fresh
// database. Devices carry real TPM2B_PUBLIC areas made in software, since the registry derives a
// device's id from its AK.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "operator/registry.hpp"
#include "operator/sql.hpp"
#include "protocol/quote.hpp"
#include "tests/fuzz/verifier_fixtures.hpp"
#include "tests/support/postgres.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;
using namespace mcimd::op;
namespace fs = std::filesystem;
using std::chrono::seconds;

namespace {

enum class Backend { Sqlite, Postgresql };
std::string_view name_of(Backend b) { return b == Backend::Sqlite ? "sqlite" : "postgresql"; }
void PrintTo(Backend b, std::ostream* os) { *os << name_of(b); }

const std::string kOperatorBinary = MCIMD_BINARY_DIR "/operator/mcim-operator";

// A fixed epoch, so every time in a test reads as an offset.
Timestamp at(int64_t s) { return Timestamp(seconds(1'800'000'000 + s)); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

Bytes filled(std::size_t n, uint8_t value) { return Bytes(n, value); }

// A device as enrolment leaves it: software keys in TPM2B_PUBLIC form, the AK name derived.
DeviceRecord make_device(bool with_certificate = true) {
  auto ek = test::verifier::ec_key();
  auto ak = test::verifier::ec_key();
  DeviceRecord r;
  r.ek_public = test::verifier::tpm_public(ek.get(), test::verifier::kEkAttributes);
  r.ak_public = test::verifier::tpm_public(ak.get(), test::verifier::kAkAttributes);
  r.ak_name = *protocol::object_name(r.ak_public);
  if (with_certificate) r.ek_certificate = Bytes{0x30, 0x03, 0x02, 0x01, 0x01};
  r.uncertified_ek = !with_certificate;
  return r;
}

template <class T>
void expect_error(const Result<T>& result, Code code, const std::string& mentions = {}) {
  ASSERT_FALSE(result) << "expected " << code_name(code);
  EXPECT_EQ(result.error().code, code) << result.error().describe();
  if (!mentions.empty()) {
    EXPECT_TRUE(contains(result.error().message, mentions)) << result.error().message;
  }
}

class ARegistry : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::Postgresql) {
      server_ = std::make_unique<test::PostgresServer>();
      connection_ = server_->create_database("registry");
    } else {
      connection_ = "sqlite:" + (dir_.path() / "registry.db").string();
    }
    registry_.emplace(open());
  }

  Registry open(const RegistryOptions& options = {}) {
    auto r = Registry::open(connection_, options);
    if (!r) throw std::runtime_error("open the registry: " + r.error().describe());
    return std::move(*r);
  }
  Registry& registry() { return *registry_; }

  // A device stored in the registry; its AK name.
  Bytes stored_device() {
    auto d = make_device();
    d.enrolled = true;
    auto stored = registry().store(d);
    if (!stored) throw std::runtime_error(stored.error().describe());
    return d.ak_name;
  }

  // The database without the registry, to change rows behind its back.
  std::unique_ptr<op::sql::Connection> raw() {
    auto target = op::sql::parse_target(connection_);
    if (!target) throw std::runtime_error(target.error().describe());
    auto c = GetParam() == Backend::Sqlite ? op::sql::open_sqlite(*target, {}) : op::sql::open_postgresql(*target);
    if (!c) throw std::runtime_error(c.error().describe());
    return std::move(*c);
  }
  void raw_run(const std::string& statement, std::initializer_list<op::sql::Value> params = {}) {
    auto r = raw()->run(statement, params);
    if (!r) throw std::runtime_error(statement + ": " + r.error().describe());
  }

  PackageSpec package(const Bytes& ak_name, uint64_t counter, const std::string& id) {
    PackageSpec p;
    p.package_id = id;
    p.ak_name = ak_name;
    p.counter = counter;
    p.iccid = "8988211000000000001";
    p.imsi = "001010000000001";
    p.package_sha256 = filled(32, 0x5a);
    p.issued = at(0);
    p.expires = at(3600);
    return p;
  }

  test::TempDir dir_;
  std::unique_ptr<test::PostgresServer> server_;
  std::string connection_;
  std::optional<Registry> registry_;
};

// --- devices ---------------------------------------------------------------------------------------

TEST_P(ARegistry, StoresAndFindsADeviceWithEveryField) {
  auto d = make_device();
  d.pending_secret_sha256 = filled(32, 0xab);
  // A TPM clock above 2^63 comes back bit for bit.
  d.last_clock = attestation::ClockInfo{0xfedcba9876543210ull, 7, 0xffffffffu, true};
  ASSERT_TRUE(registry().store(d));
  EXPECT_EQ(d.revision, 1u);

  auto found = registry().find(d.ak_name);
  ASSERT_TRUE(found) << found.error().describe();
  ASSERT_TRUE(*found);
  const DeviceRecord& f = **found;
  EXPECT_EQ(f.ak_name, d.ak_name);
  EXPECT_EQ(f.ak_public, d.ak_public);
  EXPECT_EQ(f.ek_public, d.ek_public);
  EXPECT_EQ(f.ek_certificate, d.ek_certificate);
  EXPECT_FALSE(f.enrolled);
  EXPECT_FALSE(f.uncertified_ek);
  EXPECT_EQ(f.pending_secret_sha256, d.pending_secret_sha256);
  EXPECT_EQ(f.last_clock, d.last_clock);
  EXPECT_EQ(f.revision, 1u);
}

TEST_P(ARegistry, KeepsTheUncertifiedFlagAndNoClockUntilOneIsAccepted) {
  auto d = make_device(/*with_certificate=*/false);
  d.enrolled = true;
  ASSERT_TRUE(registry().store(d));
  auto found = registry().find(d.ak_name);
  ASSERT_TRUE(found && *found);
  EXPECT_TRUE((*found)->uncertified_ek);
  EXPECT_FALSE((*found)->ek_certificate);
  EXPECT_TRUE((*found)->enrolled);
  EXPECT_FALSE((*found)->last_clock);
  EXPECT_FALSE((*found)->pending_secret_sha256);
}

TEST_P(ARegistry, FindsNothingForAnUnknownDevice) {
  auto found = registry().find(make_device().ak_name);
  ASSERT_TRUE(found) << found.error().describe();
  EXPECT_FALSE(*found);
}

TEST_P(ARegistry, ListsDevicesInIdOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(device_id(stored_device()));
  std::sort(ids.begin(), ids.end());
  auto all = registry().list();
  ASSERT_TRUE(all) << all.error().describe();
  std::vector<std::string> listed;
  for (const auto& r : *all) listed.push_back(device_id(r.ak_name));
  EXPECT_EQ(listed, ids);
}

TEST_P(ARegistry, UpdatesARecordItRead) {
  const Bytes name = stored_device();
  auto read = *registry().find(name);
  read->last_clock = attestation::ClockInfo{100, 1, 2, true};
  ASSERT_TRUE(registry().store(*read));
  EXPECT_EQ(read->revision, 2u);
  // Stored again from the same record: its revision followed the store.
  read->last_clock->clock = 200;
  ASSERT_TRUE(registry().store(*read));
  EXPECT_EQ((*registry().find(name))->last_clock->clock, 200u);
}

TEST_P(ARegistry, RefusesToStoreOverAChangeMadeSinceTheRead) {
  const Bytes name = stored_device();
  auto first = *registry().find(name);
  auto second = *registry().find(name);
  first->last_clock = attestation::ClockInfo{100, 1, 0, true};
  second->last_clock = attestation::ClockInfo{50, 1, 0, true};
  ASSERT_TRUE(registry().store(*first));
  expect_error(registry().store(*second), Code::Busy, "changed by another operation");
  // The first change stands; read again, the second caller can decide anew.
  auto now = *registry().find(name);
  EXPECT_EQ(now->last_clock->clock, 100u);
  now->last_clock->clock = 150;
  EXPECT_TRUE(registry().store(*now));
}

TEST_P(ARegistry, RefusesToAddADeviceThatWasAddedMeanwhile) {
  auto d = make_device();
  auto again = d;
  ASSERT_TRUE(registry().store(d));
  expect_error(registry().store(again), Code::Busy);
}

TEST_P(ARegistry, RefusesARecordWhoseNameIsNotItsAks) {
  auto d = make_device();
  d.ak_name = make_device().ak_name;
  expect_error(registry().store(d), Code::InvalidArgument, "ak_name");
  auto inconsistent = make_device();
  inconsistent.uncertified_ek = true;  // yet it has a certificate
  expect_error(registry().store(inconsistent), Code::InvalidArgument, "uncertified_ek");
}

TEST_P(ARegistry, RefusesRowsChangedBehindItsBack) {
  const Bytes name = stored_device();
  const Bytes other = make_device().ak_public;
  const std::string id = device_id(name);

  raw_run("UPDATE devices SET ak_public = $1 WHERE device = $2", {other, id});
  expect_error(registry().find(name), Code::StoreCorrupt, id);
  expect_error(registry().list(), Code::StoreCorrupt, "another device");
}

TEST_P(ARegistry, RefusesADeviceRowWithAMalformedField) {
  const Bytes name = stored_device();
  const std::string id = device_id(name);
  raw_run("UPDATE devices SET pending_secret_sha256 = $1 WHERE device = $2", {filled(3, 1), id});
  expect_error(registry().find(name), Code::StoreCorrupt, "pending_secret_sha256");

  raw_run("UPDATE devices SET pending_secret_sha256 = NULL, uncertified_ek = 1 WHERE device = $1", {id});
  expect_error(registry().find(name), Code::StoreCorrupt, "uncertified_ek");

  raw_run("UPDATE devices SET uncertified_ek = 0, last_clock = 5 WHERE device = $1", {id});
  expect_error(registry().find(name), Code::StoreCorrupt, "clock");
}

TEST_P(ARegistry, KeepsDevicesAcrossReopening) {
  const Bytes name = stored_device();
  registry_.reset();
  registry_.emplace(open());
  auto found = registry().find(name);
  ASSERT_TRUE(found && *found);
  EXPECT_TRUE((*found)->enrolled);
}

// --- package counters --------------------------------------------------------------------------------

TEST_P(ARegistry, HandsOutPackageCountersFromOneUpwardPerDevice) {
  const Bytes a = stored_device(), b = stored_device();
  EXPECT_EQ(*registry().next_package_counter(a), 1u);
  EXPECT_EQ(*registry().next_package_counter(a), 2u);
  EXPECT_EQ(*registry().next_package_counter(b), 1u);
  EXPECT_EQ(*registry().next_package_counter(a), 3u);
}

// A device another operator provisioned first has counted that operator's packages too.
TEST_P(ARegistry, HandsOutCountersAboveTheOneTheDeviceAccepted) {
  const Bytes a = stored_device();
  EXPECT_EQ(*registry().next_package_counter(a, /*accepted=*/5), 6u);
  EXPECT_EQ(*registry().next_package_counter(a, /*accepted=*/2), 7u) << "a lower claim never takes a counter back";
  EXPECT_EQ(*registry().next_package_counter(a), 8u);
  expect_error(registry().next_package_counter(a, static_cast<uint64_t>(INT64_MAX)), Code::InvalidArgument,
               "no counter is left");
  EXPECT_EQ(*registry().next_package_counter(a), 9u);
}

TEST_P(ARegistry, KeepsCountingAfterReopening) {
  const Bytes a = stored_device();
  ASSERT_EQ(*registry().next_package_counter(a), 1u);
  ASSERT_EQ(*registry().next_package_counter(a), 2u);
  registry_.reset();
  registry_.emplace(open());
  EXPECT_EQ(*registry().next_package_counter(a), 3u);
}

TEST_P(ARegistry, KeepsTheCounterWhenTheDeviceIsStoredAgain) {
  const Bytes a = stored_device();
  ASSERT_EQ(*registry().next_package_counter(a), 1u);
  auto rec = *registry().find(a);
  rec->last_clock = attestation::ClockInfo{1, 1, 1, true};
  ASSERT_TRUE(registry().store(*rec));
  EXPECT_EQ(*registry().next_package_counter(a), 2u);
}

TEST_P(ARegistry, RefusesACounterForAnUnknownDevice) {
  expect_error(registry().next_package_counter(make_device().ak_name), Code::NotFound);
  expect_error(registry().next_package_counter(Bytes{}), Code::InvalidArgument);
}

TEST_P(ARegistry, HandsOutDistinctCountersToConcurrentThreads) {
  constexpr int kThreads = 8, kEach = 25;
  const Bytes a = stored_device();
  std::mutex m;
  std::vector<uint64_t> seen;
  std::atomic<int> failures{0};
  std::string failure;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto c = registry().next_package_counter(a);
        std::lock_guard lock(m);
        if (c) {
          seen.push_back(*c);
        } else {
          ++failures;
          failure = c.error().describe();
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << failure;
  std::sort(seen.begin(), seen.end());
  std::vector<uint64_t> expected(kThreads * kEach);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = i + 1;
  EXPECT_EQ(seen, expected);
}

TEST_P(ARegistry, HandsOutDistinctCountersToConcurrentProcesses) {
  constexpr int kProcesses = 3, kEach = 30;
  const Bytes a = stored_device();
  struct Child {
    pid_t pid;
    int fd;
  };
  std::vector<Child> children;
  for (int p = 0; p < kProcesses; ++p) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child opens its own registry: connections never cross a fork.
      ::close(fds[0]);
      auto mine = Registry::open(connection_);
      if (!mine) ::_exit(2);
      for (int i = 0; i < kEach; ++i) {
        auto c = mine->next_package_counter(a);
        if (!c) ::_exit(3);
        const uint64_t v = *c;
        if (::write(fds[1], &v, sizeof v) != sizeof v) ::_exit(4);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    children.push_back({pid, fds[0]});
  }
  std::vector<uint64_t> seen;
  for (auto& child : children) {
    uint64_t v = 0;
    while (::read(child.fd, &v, sizeof v) == sizeof v) seen.push_back(v);
    ::close(child.fd);
    int status = 0;
    ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  std::sort(seen.begin(), seen.end());
  std::vector<uint64_t> expected(kProcesses * kEach);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = i + 1;
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(*registry().next_package_counter(a), static_cast<uint64_t>(kProcesses * kEach + 1));
}

// --- subscriptions -------------------------------------------------------------------------------------

TEST_P(ARegistry, CreatesAndFindsSubscriptions) {
  auto drawn = registry().create_subscription({std::nullopt, "op-1", "898821100000000001", "00101123456"}, at(5));
  ASSERT_TRUE(drawn) << drawn.error().describe();
  EXPECT_EQ(drawn->id.size(), 22u);  // 128 bits of base64url
  EXPECT_EQ(drawn->created, at(5));
  auto named = registry().create_subscription({"sub.2", "op-1", "89882110000000000022", "001011234567890"}, at(6));
  ASSERT_TRUE(named) << named.error().describe();
  EXPECT_EQ(named->id, "sub.2");

  EXPECT_EQ(**registry().find_subscription(drawn->id), *drawn);
  EXPECT_EQ(**registry().find_subscription_by_iccid("89882110000000000022"), *named);
  EXPECT_FALSE(*registry().find_subscription("nobody"));
  EXPECT_FALSE(*registry().find_subscription_by_iccid("898821100000000009"));
}

TEST_P(ARegistry, RefusesASecondSubscriptionWithAnIdIccidOrImsiInUse) {
  ASSERT_TRUE(registry().create_subscription({"s1", "op", "898821100000000001", "001010000000001"}, at(0)));
  expect_error(registry().create_subscription({"s2", "op", "898821100000000001", "001010000000002"}, at(0)),
               Code::AlreadyExists, "ICCID");
  expect_error(registry().create_subscription({"s3", "op", "898821100000000003", "001010000000001"}, at(0)),
               Code::AlreadyExists);
  expect_error(registry().create_subscription({"s1", "op", "898821100000000004", "001010000000004"}, at(0)),
               Code::AlreadyExists);
}

TEST_P(ARegistry, RefusesMalformedSubscriptions) {
  const std::vector<SubscriptionSpec> bad = {
      {std::nullopt, "op", "89882110000000001", "001010000000001"},    // 17-digit ICCID
      {std::nullopt, "op", "898821100000000001234", "001010000000001"},  // 21 digits
      {std::nullopt, "op", "89882110000000000A", "001010000000001"},
      {std::nullopt, "op", "898821100000000001", "0010100000000012"},  // 16-digit IMSI
      {std::nullopt, "op", "898821100000000001", "00101"},
      {std::nullopt, "an operator", "898821100000000001", "001010000000001"},
      {std::nullopt, "", "898821100000000001", "001010000000001"},
      {"../etc", "op", "898821100000000001", "001010000000001"},
      {std::string(65, 'a'), "op", "898821100000000001", "001010000000001"},
  };
  for (const auto& spec : bad) expect_error(registry().create_subscription(spec, at(0)), Code::InvalidArgument);
}

TEST_P(ARegistry, LinksASubscriptionToOneDeviceAtATime) {
  const Bytes a = stored_device(), b = stored_device();
  auto s = *registry().create_subscription({"s1", "op", "898821100000000001", "001010000000001"}, at(0));
  auto t = *registry().create_subscription({"s2", "op", "898821100000000002", "001010000000002"}, at(0));
  ASSERT_TRUE(registry().link_subscription(a, "s1", at(1)));
  EXPECT_TRUE(registry().link_subscription(a, "s1", at(2)));  // again: nothing changes
  ASSERT_TRUE(registry().link_subscription(a, "s2", at(3)));
  expect_error(registry().link_subscription(b, "s1", at(4)), Code::AlreadyExists, device_id(a));

  EXPECT_EQ(*registry().subscriptions_of(a), (std::vector<Subscription>{s, t}));
  EXPECT_TRUE(registry().subscriptions_of(b)->empty());
  EXPECT_EQ(**registry().device_of_subscription("s1"), a);

  // A change of subscription: released by one device, taken by the other.
  ASSERT_TRUE(registry().unlink_subscription(a, "s1"));
  expect_error(registry().unlink_subscription(a, "s1"), Code::NotFound);
  ASSERT_TRUE(registry().link_subscription(b, "s1", at(5)));
  EXPECT_EQ(**registry().device_of_subscription("s1"), b);
  EXPECT_EQ(*registry().subscriptions_of(a), (std::vector<Subscription>{t}));
}

TEST_P(ARegistry, RefusesToLinkWhatIsNotRegistered) {
  const Bytes a = stored_device();
  ASSERT_TRUE(registry().create_subscription({"s1", "op", "898821100000000001", "001010000000001"}, at(0)));
  expect_error(registry().link_subscription(make_device().ak_name, "s1", at(1)), Code::NotFound, "device");
  expect_error(registry().link_subscription(a, "s9", at(1)), Code::NotFound, "subscription");
  expect_error(registry().subscriptions_of(make_device().ak_name), Code::NotFound);
  EXPECT_FALSE(*registry().device_of_subscription("s1"));
}

// --- provisioning sessions ---------------------------------------------------------------------------

TEST_P(ARegistry, LetsASessionBeTakenOnceThenCallsItReplayed) {
  const Bytes a = stored_device();
  ASSERT_TRUE(registry().create_subscription({"s1", "op", "898821100000000001", "001010000000001"}, at(0)));
  auto id = registry().create_session({a, "s1", filled(32, 7), at(300)}, at(0));
  ASSERT_TRUE(id) << id.error().describe();
  EXPECT_EQ(id->size(), 22u);

  auto taken = registry().take_session(*id, at(299));
  ASSERT_TRUE(taken) << taken.error().describe();
  EXPECT_EQ(*taken, (ProvisioningSession{*id, a, "s1", filled(32, 7), at(0), at(300)}));
  expect_error(registry().take_session(*id, at(299)), Code::Replayed);
  expect_error(registry().take_session(*id, at(400)), Code::Replayed);
}

TEST_P(ARegistry, CallsASessionTakenAtOrAfterItsExpiryExpired) {
  const Bytes a = stored_device();
  auto id = *registry().create_session({a, std::nullopt, filled(32, 1), at(60)}, at(0));
  expect_error(registry().take_session(id, at(60)), Code::Expired);
  expect_error(registry().take_session(id, at(61)), Code::Expired);
  auto other = *registry().create_session({a, std::nullopt, filled(32, 2), at(60)}, at(0));
  auto taken = registry().take_session(other, at(59));
  ASSERT_TRUE(taken) << taken.error().describe();
  EXPECT_FALSE(taken->subscription);
}

TEST_P(ARegistry, RefusesMalformedAndUnknownSessions) {
  const Bytes a = stored_device();
  expect_error(registry().create_session({a, std::nullopt, filled(31, 1), at(60)}, at(0)), Code::InvalidArgument);
  expect_error(registry().create_session({a, std::nullopt, filled(32, 1), at(0)}, at(0)), Code::InvalidArgument);
  expect_error(registry().create_session({make_device().ak_name, std::nullopt, filled(32, 1), at(60)}, at(0)),
               Code::NotFound);
  expect_error(registry().create_session({a, "nosuch", filled(32, 1), at(60)}, at(0)), Code::NotFound);
  expect_error(registry().take_session("AAAAAAAAAAAAAAAAAAAAAA", at(0)), Code::NotFound);
  expect_error(registry().take_session("'; DROP TABLE devices; --", at(0)), Code::InvalidArgument);
  expect_error(registry().take_session("", at(0)), Code::InvalidArgument);
}

TEST_P(ARegistry, LetsOnlyOneOfManyThreadsTakeASession) {
  constexpr int kThreads = 8;
  const Bytes a = stored_device();
  auto id = *registry().create_session({a, std::nullopt, filled(32, 3), at(60)}, at(0));
  std::atomic<int> taken{0}, replayed{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      auto r = registry().take_session(id, at(1));
      if (r) ++taken;
      else if (r.error().code == Code::Replayed) ++replayed;
      else ++other;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken.load(), 1);
  EXPECT_EQ(replayed.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_P(ARegistry, PurgesSessionsThatExpired) {
  const Bytes a = stored_device();
  auto early = *registry().create_session({a, std::nullopt, filled(32, 1), at(10)}, at(0));
  auto late = *registry().create_session({a, std::nullopt, filled(32, 2), at(100)}, at(0));
  EXPECT_EQ(*registry().purge_sessions(at(50)), 1u);
  expect_error(registry().take_session(early, at(5)), Code::NotFound);
  EXPECT_TRUE(registry().take_session(late, at(50)));
}

// --- packages ---------------------------------------------------------------------------------------------

TEST_P(ARegistry, RecordsPackagesAndTheirReceipts) {
  const Bytes a = stored_device();
  const uint64_t first = *registry().next_package_counter(a), second = *registry().next_package_counter(a);
  ASSERT_TRUE(registry().record_package(package(a, second, "pkg-2")));
  ASSERT_TRUE(registry().record_package(package(a, first, "pkg-1")));

  auto issued = registry().find_package("pkg-1");
  ASSERT_TRUE(issued && *issued) << (issued ? "absent" : issued.error().describe());
  EXPECT_EQ((*issued)->state, PackageState::Issued);
  EXPECT_EQ((*issued)->spec.ak_name, a);
  EXPECT_EQ((*issued)->spec.counter, first);
  EXPECT_EQ((*issued)->spec.package_sha256, filled(32, 0x5a));
  EXPECT_EQ((*issued)->spec.expires, at(3600));
  EXPECT_FALSE((*issued)->receipt);

  const InstallReceiptInfo receipt{{0x8000000000000001ull, 3, 4, true}, filled(32, 0xee), at(120)};
  ASSERT_TRUE(registry().mark_installed("pkg-1", receipt));
  auto installed = **registry().find_package("pkg-1");
  EXPECT_EQ(installed.state, PackageState::Installed);
  EXPECT_EQ(installed.receipt, receipt);

  auto all = registry().packages_of(a);
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].spec.package_id, "pkg-1");  // counter order
  EXPECT_EQ((*all)[1].spec.package_id, "pkg-2");
  EXPECT_EQ((*all)[1].state, PackageState::Issued);
}

TEST_P(ARegistry, CountsAReceiptOnce) {
  const Bytes a = stored_device();
  ASSERT_TRUE(registry().record_package(package(a, *registry().next_package_counter(a), "pkg")));
  const InstallReceiptInfo receipt{{10, 1, 0, true}, filled(32, 1), at(5)};
  ASSERT_TRUE(registry().mark_installed("pkg", receipt));
  expect_error(registry().mark_installed("pkg", receipt), Code::Replayed);
  expect_error(registry().mark_failed("pkg", "too late", at(6)), Code::InvalidState);
  expect_error(registry().mark_installed("nopkg", receipt), Code::NotFound);
}

TEST_P(ARegistry, RecordsAFailedPackage) {
  const Bytes a = stored_device();
  ASSERT_TRUE(registry().record_package(package(a, *registry().next_package_counter(a), "pkg")));
  ASSERT_TRUE(registry().mark_failed("pkg", "the device refused it: RollbackDetected", at(9)));
  auto failed = **registry().find_package("pkg");
  EXPECT_EQ(failed.state, PackageState::Failed);
  EXPECT_EQ(failed.failure, "the device refused it: RollbackDetected");
  EXPECT_EQ(failed.failed, at(9));
  expect_error(registry().mark_installed("pkg", {{1, 1, 1, true}, filled(32, 1), at(10)}), Code::InvalidState);
  expect_error(registry().mark_failed("pkg", "two\nlines", at(10)), Code::InvalidArgument);
}

TEST_P(ARegistry, RefusesTwoPackagesWithOneCounterOrOneId) {
  const Bytes a = stored_device();
  const uint64_t c = *registry().next_package_counter(a);
  ASSERT_TRUE(registry().record_package(package(a, c, "pkg-1")));
  expect_error(registry().record_package(package(a, c, "pkg-2")), Code::AlreadyExists);
  const uint64_t d = *registry().next_package_counter(a);
  expect_error(registry().record_package(package(a, d, "pkg-1")), Code::AlreadyExists);
  EXPECT_TRUE(registry().record_package(package(a, d, "pkg-2")));
}

TEST_P(ARegistry, RefusesACounterItDidNotHandOut) {
  const Bytes a = stored_device();
  expect_error(registry().record_package(package(a, 1, "pkg")), Code::InvalidArgument, "next_package_counter");
  ASSERT_EQ(*registry().next_package_counter(a), 1u);
  expect_error(registry().record_package(package(a, 2, "pkg")), Code::InvalidArgument, "next_package_counter");
  expect_error(registry().record_package(package(a, 0, "pkg")), Code::InvalidArgument);
  EXPECT_TRUE(registry().record_package(package(a, 1, "pkg")));
}

TEST_P(ARegistry, RefusesMalformedPackages) {
  const Bytes a = stored_device();
  const uint64_t c = *registry().next_package_counter(a);
  auto short_digest = package(a, c, "pkg");
  short_digest.package_sha256.pop_back();
  expect_error(registry().record_package(short_digest), Code::InvalidArgument);
  auto backwards = package(a, c, "pkg");
  backwards.expires = backwards.issued;
  expect_error(registry().record_package(backwards), Code::InvalidArgument);
  expect_error(registry().record_package(package(a, c, "pkg/1")), Code::InvalidArgument);
  auto bad_iccid = package(a, c, "pkg");
  bad_iccid.iccid = "12";
  expect_error(registry().record_package(bad_iccid), Code::InvalidArgument);
  expect_error(registry().record_package(package(make_device().ak_name, 1, "pkg")), Code::NotFound);
  expect_error(registry().packages_of(make_device().ak_name), Code::NotFound);
  EXPECT_FALSE(*registry().find_package("pkg"));
}

// --- batch jobs -----------------------------------------------------------------------------------------------

TEST_P(ARegistry, ResumesABatchJobWhereItStopped) {
  const std::vector<std::string> keys = {"device-c", "device-a", "device-b"};
  ASSERT_EQ(*registry().add_batch_items("job-1", keys, at(0)), 3u);
  EXPECT_EQ(*registry().claim_batch_item("job-1", at(1)), "device-a");
  ASSERT_TRUE(registry().finish_batch_item({"job-1", "device-a", BatchStatus::Done, "pkg-17 counter 3", at(2)}));
  EXPECT_EQ(*registry().claim_batch_item("job-1", at(3)), "device-b");
  // The run dies with device-b running. The next run adds the same keys and one more...
  const std::vector<std::string> again = {"device-a", "device-b", "device-c", "device-d"};
  EXPECT_EQ(*registry().add_batch_items("job-1", again, at(10)), 1u);
  // ...puts what was running back, and carries on without redoing device-a.
  EXPECT_EQ(*registry().requeue_batch_items("job-1", at(11)), 1u);
  std::vector<std::string> claimed;
  while (auto key = *registry().claim_batch_item("job-1", at(12))) {
    claimed.push_back(*key);
    ASSERT_TRUE(registry().finish_batch_item(
        {"job-1", *key, *key == "device-c" ? BatchStatus::Failed : BatchStatus::Done, "result of " + *key, at(13)}));
  }
  EXPECT_EQ(claimed, (std::vector<std::string>{"device-b", "device-c", "device-d"}));

  auto items = registry().batch_items("job-1");
  ASSERT_TRUE(items) << items.error().describe();
  ASSERT_EQ(items->size(), 4u);
  EXPECT_EQ((*items)[0], (BatchItem{"job-1", "device-a", BatchStatus::Done, "pkg-17 counter 3", at(2)}));
  EXPECT_EQ((*items)[2].status, BatchStatus::Failed);
  EXPECT_EQ((*items)[2].result, "result of device-c");
  EXPECT_TRUE(registry().batch_items("job-2")->empty());
}

TEST_P(ARegistry, GivesEveryBatchItemToExactlyOneWorker) {
  constexpr int kItems = 60, kWorkers = 6;
  std::vector<std::string> keys;
  for (int i = 0; i < kItems; ++i) keys.push_back("item-" + std::to_string(1000 + i));
  ASSERT_EQ(*registry().add_batch_items("job", keys, at(0)), static_cast<std::size_t>(kItems));
  std::mutex m;
  std::vector<std::string> claimed;
  std::string failure;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w)
    workers.emplace_back([&] {
      for (;;) {
        auto key = registry().claim_batch_item("job", at(1));
        if (!key || !*key) {
          if (!key) {
            std::lock_guard lock(m);
            failure = key.error().describe();
          }
          return;
        }
        auto done = registry().finish_batch_item({"job", **key, BatchStatus::Done, "ok", at(2)});
        std::lock_guard lock(m);
        claimed.push_back(**key);
        if (!done) failure = done.error().describe();
      }
    });
  for (auto& w : workers) w.join();
  EXPECT_EQ(failure, "");
  std::sort(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed, keys);
}

TEST_P(ARegistry, RefusesBatchChangesOutOfTurn) {
  ASSERT_TRUE(registry().add_batch_items("job", std::vector<std::string>{"a", "b"}, at(0)));
  expect_error(registry().finish_batch_item({"job", "a", BatchStatus::Done, "", at(1)}), Code::InvalidState,
               "pending");
  ASSERT_EQ(*registry().claim_batch_item("job", at(1)), "a");
  expect_error(registry().finish_batch_item({"job", "a", BatchStatus::Pending, "", at(1)}), Code::InvalidArgument);
  expect_error(registry().finish_batch_item({"job", "a", BatchStatus::Done, "one\ntwo", at(1)}), Code::InvalidArgument);
  ASSERT_TRUE(registry().finish_batch_item({"job", "a", BatchStatus::Done, "", at(1)}));
  expect_error(registry().finish_batch_item({"job", "a", BatchStatus::Failed, "", at(1)}), Code::InvalidState, "done");
  expect_error(registry().finish_batch_item({"job", "zz", BatchStatus::Done, "", at(1)}), Code::NotFound);
  expect_error(registry().add_batch_items("job", std::vector<std::string>{"x\ny"}, at(0)), Code::InvalidArgument);
  expect_error(registry().add_batch_items("job", std::vector<std::string>{""}, at(0)), Code::InvalidArgument);
  expect_error(registry().add_batch_items("a job", std::vector<std::string>{"x"}, at(0)), Code::InvalidArgument);
  expect_error(registry().add_batch_items("job", std::vector<std::string>{std::string("\xff\xfe")}, at(0)),
               Code::InvalidArgument);
}

// --- schema ----------------------------------------------------------------------------------------------------

TEST_P(ARegistry, WritesItsSchemaVersion) {
  auto rows = raw()->run("SELECT version FROM schema_version");
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(*(*rows)[0].integer(0), Registry::schema_version());
  // A second open of the same database finds the schema and keeps it.
  registry_.reset();
  registry_.emplace(open());
  EXPECT_EQ(raw()->run("SELECT version FROM schema_version")->size(), 1u);
}

TEST_P(ARegistry, RefusesANewerSchemaVersionByName) {
  registry_.reset();
  raw_run("UPDATE schema_version SET version = 99");
  auto r = Registry::open(connection_);
  expect_error(r, Code::Unsupported, "schema version 99");
  EXPECT_TRUE(contains(r.error().message, "newer")) << r.error().message;
}

TEST_P(ARegistry, RefusesADamagedSchemaVersion) {
  registry_.reset();
  raw_run("INSERT INTO schema_version (version) VALUES (1)");
  expect_error(Registry::open(connection_), Code::StoreCorrupt, "schema_version");
  raw_run("DELETE FROM schema_version");
  raw_run("INSERT INTO schema_version (version) VALUES (0)");
  expect_error(Registry::open(connection_), Code::StoreCorrupt, "schema version 0");
}

TEST_P(ARegistry, OpensTheSameEmptyDatabaseFromManyThreadsAtOnce) {
  // A second, still empty database: every opener races to create the schema.
  std::string fresh = GetParam() == Backend::Postgresql ? server_->create_database("fresh")
                                                         : "sqlite:" + (dir_.path() / "fresh.db").string();
  constexpr int kThreads = 6;
  std::atomic<int> opened{0};
  std::mutex m;
  std::string failure;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      auto r = Registry::open(fresh);
      if (r) {
        ++opened;
        return;
      }
      std::lock_guard lock(m);
      failure = r.error().describe();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), kThreads) << failure;
}

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) { return std::string(name_of(info.param)); }

INSTANTIATE_TEST_SUITE_P(Backends, ARegistry, ::testing::Values(Backend::Sqlite, Backend::Postgresql), backend_name);

// --- connection strings ----------------------------------------------------------------------------------------

TEST(ARegistryConnectionString, IsRefusedByNameWhenItHasNoKnownForm) {
  test::TempDir dir;
  const std::vector<std::string> bad = {"",
                                        "registry.db",
                                        (dir.path() / "registry.db").string(),
                                        "mysql://user:hunter2hunter2@localhost/registry",
                                        "sqlite:",
                                        "sqlite::memory:",
                                        "sqlite:file:registry.db?mode=memory",
                                        "postgresql://[::1/registry"};
  for (const auto& connection : bad) {
    auto r = Registry::open(connection);
    expect_error(r, Code::InvalidArgument);
    if (!r) {
      EXPECT_FALSE(contains(r.error().message, "hunter2hunter2")) << r.error().message;
    }
  }
}

TEST(ARegistryConnectionString, NeverEchoesAPasswordFromAUriThatDoesNotParse) {
  for (const std::string connection : {"postgresql://mcimd:s3cr3t%zzpassword@127.0.0.1/registry",
                                       "postgres://mcimd@127.0.0.1/registry?password=s3cr3t%zzpassword",
                                       "postgresql://mcimd:s3cr3t%zzpassword@[::1/registry"}) {
    auto r = Registry::open(connection);
    expect_error(r, Code::InvalidArgument);
    if (!r) {
      EXPECT_FALSE(contains(r.error().message, "s3cr3t")) << r.error().message;
    }
  }
}

TEST(ARegistryConnectionString, NamesAMissingSqliteFileWhenNotCreating) {
  test::TempDir dir;
  const fs::path path = dir.path() / "absent.db";
  expect_error(Registry::open("sqlite:" + path.string(), RegistryOptions{.create = false}), Code::NotFound,
               path.string());
  EXPECT_FALSE(fs::exists(path));
}

TEST(ARegistryConnectionString, RefusesAFileThatIsNotADatabase) {
  test::TempDir dir;
  const fs::path path = dir.path() / "registry.db";
  std::ofstream(path) << std::string(4096, 'x');
  expect_error(Registry::open("sqlite:" + path.string()), Code::StoreCorrupt);
}

TEST(ARegistryConnectionString, CreatesTheSqliteFilePrivate) {
  test::TempDir dir;
  const fs::path path = dir.path() / "new" / "registry.db";
  auto r = Registry::open("sqlite:" + path.string());
  ASSERT_TRUE(r) << r.error().describe();
  auto d = make_device();
  ASSERT_TRUE(r->store(d));
  struct stat st {};
  ASSERT_EQ(::stat(path.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const auto& entry : fs::directory_iterator(path.parent_path())) {
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
  }
  EXPECT_EQ(r->description(), "sqlite:" + path.string());
}

TEST(ARegistryConnectionString, ReportsAnUnreachableServerWithoutThePassword) {
  const int closed_port = test::free_port_pair();
  const std::string password = "Unreachable-Secret-71";
  auto r = Registry::open("postgresql://mcimd:" + password + "@127.0.0.1:" + std::to_string(closed_port) + "/registry");
  expect_error(r, Code::IoError, "127.0.0.1");
  if (!r) {
    EXPECT_FALSE(contains(r.error().message, password)) << r.error().message;
  }
}

// --- a live PostgreSQL server's refusals -------------------------------------------------------------------------

class APostgresqlRegistry : public ::testing::Test {
 protected:
  test::PostgresServer server_;
};

TEST_F(APostgresqlRegistry, ReportsAWrongPasswordWithoutIt) {
  const std::string right = server_.create_database("registry");
  ASSERT_TRUE(Registry::open(right));
  const std::string wrong = "Wrong-Password-For-Mcimd-93";
  auto r = Registry::open(server_.uri("registry", wrong));
  expect_error(r, Code::IoError, "password authentication failed");
  if (!r) {
    EXPECT_FALSE(contains(r.error().message, wrong)) << r.error().message;
    EXPECT_FALSE(contains(r.error().message, server_.password())) << r.error().message;
  }
}

TEST_F(APostgresqlRegistry, DescribesItselfWithoutThePassword) {
  const std::string uri = server_.create_database("registry");
  auto r = Registry::open(uri);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->description(),
            "postgresql://" + server_.role() + "@127.0.0.1:" + std::to_string(server_.port()) + "/registry");
}

TEST_F(APostgresqlRegistry, ReportsAMissingDatabase) {
  auto r = Registry::open(server_.uri("nosuchdb", server_.password()));
  expect_error(r, Code::IoError, "nosuchdb");
  if (!r) {
    EXPECT_FALSE(contains(r.error().message, server_.password())) << r.error().message;
  }
}

TEST_F(APostgresqlRegistry, ReconnectsAfterTheServerDroppedItsConnections) {
  const std::string uri = server_.create_database("registry");
  auto r = Registry::open(uri, RegistryOptions{.max_connections = 1});
  ASSERT_TRUE(r) << r.error().describe();
  DeviceRecord d = make_device();
  ASSERT_TRUE(r->store(d));
  // An administrator ends every session of the registry's database, and waits until they are gone.
  auto admin = op::sql::parse_target(server_.uri("postgres", server_.password()));
  auto c = op::sql::open_postgresql(*admin);
  ASSERT_TRUE(c) << c.error().describe();
  ASSERT_TRUE((*c)->run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'registry'"));
  ASSERT_TRUE(test::wait_until(
      [&] {
        auto left = (*c)->run("SELECT pid FROM pg_stat_activity WHERE datname = 'registry'");
        return left && left->empty();
      },
      std::chrono::seconds(10)));
  // The call that meets the dead connection fails with the driver's reason; the next reconnects.
  expect_error(r->find(d.ak_name), Code::IoError);
  auto found = r->find(d.ak_name);
  ASSERT_TRUE(found) << found.error().describe();
  EXPECT_TRUE(*found);
}

// --- state directories -------------------------------------------------------------------------------------------

TEST(AStateDirectory, KeepsItsRegistryInRegistryDb) {
  test::TempDir dir;
  const fs::path state = dir.path() / "state";
  expect_error(Registry::open_state_dir(state, /*create=*/false), Code::NotFound);
  auto r = Registry::open_state_dir(state, /*create=*/true);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->description(), "sqlite:" + (state / "registry.db").string());
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((state / "registry.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AStateDirectory, ImportsTheDeviceFilesOfAnEarlierRelease) {
  test::TempDir dir;
  const fs::path state = dir.path() / "state";
  fs::create_directories(state / "devices");
  auto enrolled = make_device(/*with_certificate=*/false);
  enrolled.enrolled = true;
  enrolled.last_clock = attestation::ClockInfo{5000, 2, 1, true};
  auto pending = make_device();
  pending.pending_secret_sha256 = filled(32, 9);
  for (const auto* d : {&enrolled, &pending})
    std::ofstream(state / "devices" / (device_id(d->ak_name) + ".json")) << to_json(*d);

  auto r = Registry::open_state_dir(state, /*create=*/false);
  ASSERT_TRUE(r) << r.error().describe();
  auto a = **r->find(enrolled.ak_name);
  EXPECT_TRUE(a.enrolled);
  EXPECT_TRUE(a.uncertified_ek);
  EXPECT_EQ(a.last_clock, enrolled.last_clock);
  auto b = **r->find(pending.ak_name);
  EXPECT_FALSE(b.enrolled);
  EXPECT_EQ(b.pending_secret_sha256, pending.pending_secret_sha256);
  EXPECT_FALSE(fs::exists(state / "devices"));
  EXPECT_TRUE(fs::exists(state / "devices.imported" / (device_id(pending.ak_name) + ".json")));

  // Opened again, nothing is imported twice and the database's later state stands.
  b.enrolled = true;
  b.pending_secret_sha256.reset();
  ASSERT_TRUE(r->store(b));
  auto again = Registry::open_state_dir(state, /*create=*/false);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_TRUE((**again->find(pending.ak_name)).enrolled);
  EXPECT_EQ(again->list()->size(), 2u);
}

TEST(AStateDirectory, RefusesToImportACorruptDeviceFile) {
  test::TempDir dir;
  const fs::path state = dir.path() / "state";
  fs::create_directories(state / "devices");
  std::ofstream(state / "devices" / "00.json") << "{\"format\":\"something else\"}";
  expect_error(Registry::open_state_dir(state, /*create=*/false), Code::StoreCorrupt, "00.json");
  EXPECT_TRUE(fs::exists(state / "devices"));
}

// --- the command line ----------------------------------------------------------------------------------------------

TEST(TheOperatorCommandLine, NamesABadRegistryConnectionString) {
  auto r = test::run({kOperatorBinary, "enroll-finish", "--registry", "mysql://localhost/x", "--secret",
                      std::string(64, '1')});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "--registry")) << r.err;
  auto both = test::run({kOperatorBinary, "enroll-finish", "--registry", "sqlite:/x", "--state", "/y", "--secret",
                         std::string(64, '1')});
  EXPECT_NE(both.exit_code, 0);
}

TEST(TheOperatorCommandLine, KeepsThePasswordOutOfItsMessages) {
  test::PostgresServer server;
  server.create_database("registry");
  const std::string wrong = "Cli-Wrong-Password-42";
  auto r = test::run({kOperatorBinary, "enroll-finish", "--registry", server.uri("registry", wrong), "--secret",
                      std::string(64, '1')});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "password authentication failed")) << r.err;
  EXPECT_FALSE(contains(r.err + r.out, wrong)) << r.err;
}

TEST(TheOperatorCommandLine, UsesAPostgresqlRegistry) {
  test::PostgresServer server;
  const std::string uri = server.create_database("registry");
  // No enrolment is pending in an empty registry: the command reached the database and said so.
  auto r = test::run({kOperatorBinary, "enroll-finish", "--registry", uri, "--secret", std::string(64, '1')});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "no enrolment is pending")) << r.err;
  auto opened = Registry::open(uri);
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_TRUE(opened->list()->empty());
}

}  // namespace
