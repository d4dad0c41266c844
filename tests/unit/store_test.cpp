// mcim-store format 2: layout, permissions, round trips, transactions, anti-rollback, and the
// attacks and damage a store.json or objects/ edited behind the daemon's back must not get past.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "common/file.hpp"
#include "mcim-store/store.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/store_fixture.hpp"

using namespace mcimd;
using namespace mcimd::store;
namespace fs = std::filesystem;
using json = nlohmann::json;
using test::FakeAnchor;
using test::make_attestation;
using test::make_profile;
using test::sha256_hex;
using test::slurp;
using test::spill;
using test::sqns_at;

namespace {

constexpr const char* kIccid0 = "8988211000000000001";
constexpr const char* kIccid1 = "8988211000000000002";
const Bytes kSrk{0x00, 0x04, 1, 2, 3, 4};

struct Fixture {
  test::TempDir dir;
  fs::path root = dir.path() / "store";
  FakeAnchor anchor{dir.path() / "counter"};

  Store open(const StoreOptions& options = {}) {
    auto s = Store::open(root, anchor, options);
    if (!s) throw std::runtime_error(s.error().describe());
    return std::move(*s);
  }
  Result<Store> try_open(const StoreOptions& options = {}) { return Store::open(root, anchor, options); }
  // What open() answers when it must refuse; should it open, the test fails.
  Error refusal(const StoreOptions& options = {}) {
    auto s = try_open(options);
    if (!s) return s.error();
    ADD_FAILURE() << "the store opened";
    return Error{Code::Internal, "the store opened", std::nullopt};
  }
  fs::path store_json() const { return root / "store.json"; }

  // Applies edit to store.json's parsed document and writes it back (the MAC field untouched
  // unless the edit touches it).
  void edit(const std::function<void(json&)>& change) {
    auto j = json::parse(slurp(store_json()));
    change(j);
    spill(store_json(), j.dump());
  }

  std::set<std::string> object_files() const {
    std::set<std::string> out;
    for (auto& e : fs::directory_iterator(root / "objects")) out.insert(e.path().filename().string());
    return out;
  }
};

// Two profiles, p0 enabled and active with one accepted SQN, p1 disabled; SRK pinned.
void populate(Store& s) {
  ASSERT_TRUE(s.pin_srk(kSrk));
  ASSERT_TRUE(s.add_profile(make_profile(s, kIccid0, ProfileState::Enabled), sqns_at(0x20)));
  ASSERT_TRUE(s.set_active("p0"));
  ASSERT_TRUE(s.add_profile(make_profile(s, kIccid1), sqns_at(0x40)));
  auto sq = s.sqn_array("p0");
  ASSERT_TRUE(sq);
  ASSERT_TRUE(sq->acceptable(0x3e1));
  sq->accept(0x3e1);
  ASSERT_TRUE(s.save_sqn_array("p0", *sq));
}

void populate(Fixture& f) {
  auto s = f.open();
  populate(s);
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0xffff;
  return st.st_mode & 0777;
}

bool mentions(const Error& e, const std::string& part) { return e.message.find(part) != std::string::npos; }

// The object names of a blob.
std::set<std::string> names_of(const Blob& b) { return {sha256_hex(b.public_area), sha256_hex(b.private_area)}; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Layout and round trips

TEST(AStore, IsCreatedEmptyAtTheCounterValue) {
  Fixture f;
  auto s = f.open();
  EXPECT_EQ(s.generation(), 1000u);
  EXPECT_TRUE(s.profiles().empty());
  EXPECT_FALSE(s.active());
  EXPECT_FALSE(s.pinned_srk());
  EXPECT_FALSE(s.opened_after_counter_jump());
  auto att = s.attestation();
  ASSERT_TRUE(att);
  EXPECT_FALSE(*att);
  EXPECT_TRUE(fs::is_regular_file(f.store_json()));
  EXPECT_TRUE(fs::is_directory(f.root / "objects"));
  EXPECT_TRUE(f.object_files().empty());
  EXPECT_EQ(f.anchor.value(), 1000u) << "creating a store does not move the counter";
  auto j = json::parse(slurp(f.store_json()));
  EXPECT_EQ(j["format"], 4);
  EXPECT_EQ(j["state"]["provisioning"]["last_counter"], 0);
  EXPECT_EQ(j["state"]["generation"], 1000);
  EXPECT_EQ(j["state"]["boot_counts"]["reset_count"], 7);
}

TEST(AStore, RoundTripsProfilesAndTheAttestationKeyAcrossReopening) {
  Fixture f;
  {
    auto s = f.open();
    populate(s);
    ASSERT_TRUE(s.set_attestation(make_attestation(1, "ecc")));
    EXPECT_EQ(s.generation(), f.anchor.value());
  }
  auto s = f.open();
  EXPECT_EQ(s.generation(), 1006u);
  ASSERT_EQ(s.pinned_srk(), kSrk);
  EXPECT_EQ(s.active(), "p0");
  auto list = s.profiles();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "p0");
  EXPECT_EQ(list[0].index, 0u);
  EXPECT_EQ(list[0].state, ProfileState::Enabled);
  EXPECT_EQ(list[1].id, "p1");
  EXPECT_EQ(list[1].iccid, kIccid1);
  EXPECT_EQ(list[1].imsi, "001010000000001");
  EXPECT_EQ(list[1].operator_id, "00101");
  EXPECT_EQ(list[1].authority, (Bytes{0x00, 0x0b, 0xa1, 0xa2, 0xa3}));
  EXPECT_EQ(list[1].algorithm, "milenage");
  EXPECT_EQ(list[1].key_protection, KeyProtection::TpmAes);
  EXPECT_EQ(list[1].profile_class, ProfileClass::Operational);
  EXPECT_EQ(list[1].amf, (std::array<uint8_t, 2>{0x80, 0x00}));
  EXPECT_EQ(list[1].sqn.delta, aka::SqnParameters{}.delta);
  auto p = s.profile("p1");
  ASSERT_TRUE(p) << p.error().describe();
  auto expected = make_profile(s, kIccid1);
  EXPECT_EQ(p->k, expected.k);
  EXPECT_EQ(p->opc, expected.opc);
  auto sq = s.sqn_array("p1");
  ASSERT_TRUE(sq);
  EXPECT_EQ(sq->seq(), sqns_at(0x40).seq());
  auto att = s.attestation();
  ASSERT_TRUE(att && *att);
  EXPECT_EQ(**att, make_attestation(1, "ecc"));
  EXPECT_EQ(s.new_metadata().id, "p2");
  EXPECT_EQ(s.profile("p9").error().code, Code::NotFound);
  EXPECT_EQ(s.profile("../x").error().code, Code::NotFound);
  EXPECT_EQ(s.sqn_array("p9").error().code, Code::NotFound);
}

TEST(AStore, KeepsDirectoriesAt0700AndFilesAt0600) {
  Fixture f;
  fs::create_directories(f.root / "objects");
  fs::permissions(f.root, fs::perms(0755));  // a systemd StateDirectory= default
  fs::permissions(f.root / "objects", fs::perms(0755));
  auto s = f.open();
  populate(s);
  EXPECT_EQ(mode_of(f.root), 0700u);
  EXPECT_EQ(mode_of(f.root / "objects"), 0700u);
  EXPECT_EQ(mode_of(f.store_json()), 0600u);
  ASSERT_FALSE(f.object_files().empty()) << "populate() stores the profiles' blobs";
  for (auto& e : fs::directory_iterator(f.root / "objects")) EXPECT_EQ(mode_of(e.path()), 0600u) << e.path();
}

TEST(AStore, NamesEachObjectBySha256AndKeepsOnlyReferencedOnes) {
  Fixture f;
  auto s = f.open();
  populate(s);
  std::set<std::string> expected;
  for (const char* id : {"p0", "p1"}) {
    auto p = s.profile(id);
    ASSERT_TRUE(p);
    expected.merge(names_of(p->k));
    expected.merge(names_of(p->opc));
  }
  EXPECT_EQ(f.object_files(), expected);
  for (const auto& name : expected) {
    const std::string content = slurp(f.root / "objects" / name);
    EXPECT_EQ(sha256_hex(Bytes(content.begin(), content.end())), name);
  }

  const auto p1 = s.profile("p1");
  ASSERT_TRUE(s.remove_profile("p1"));
  for (const auto& name : names_of(p1->k)) EXPECT_FALSE(f.object_files().contains(name)) << "removed with p1";
  ASSERT_TRUE(s.set_attestation(make_attestation(1)));
  ASSERT_TRUE(s.set_attestation(make_attestation(2, "rsa")));
  for (const auto& name : names_of(make_attestation(1).ak)) EXPECT_FALSE(f.object_files().contains(name));
  for (const auto& name : names_of(make_attestation(2).ak)) EXPECT_TRUE(f.object_files().contains(name));
}

TEST(AStore, WritesNoSecretsAndBase64urlBinaryFieldsIntoItsJson) {
  Fixture f;
  auto s = f.open();
  populate(s);
  auto j = json::parse(slurp(f.store_json()));
  const json& state = j["state"];
  EXPECT_EQ(state["srk"], base64url_encode(kSrk));
  EXPECT_EQ(state["generation"], s.generation());
  const json& p0 = state["profiles"][0];
  EXPECT_EQ(p0["amf"], base64url_encode(Bytes{0x80, 0x00}));
  EXPECT_EQ(p0["authority"], base64url_encode(Bytes{0x00, 0x0b, 0xa1, 0xa2, 0xa3}));
  EXPECT_EQ(p0["iccid"], kIccid0);
  EXPECT_EQ(p0["k"]["private"], sha256_hex(make_profile(s, kIccid0).k.private_area)) << "blobs by reference";
  for (const char* key : {"op", "opc_value", "k_value"}) EXPECT_FALSE(p0.contains(key));
  auto mac = base64url_decode(j["mac"].get<std::string>(), "mac");
  ASSERT_TRUE(mac);
  EXPECT_EQ(mac->size(), 32u);
}

TEST(AStore, ChangesStateActiveAndRemovesProfiles) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const uint64_t g = s.generation();
  ASSERT_TRUE(s.set_state("p1", ProfileState::Enabled));
  ASSERT_TRUE(s.set_state("p1", ProfileState::Enabled));  // unchanged: no commit
  EXPECT_EQ(s.generation(), g + 1);
  ASSERT_TRUE(s.set_active("p1"));
  EXPECT_EQ(s.set_active("p7").error().code, Code::NotFound);
  EXPECT_EQ(s.set_state("p7", ProfileState::Enabled).error().code, Code::NotFound);
  {
    auto again = f.open();
    EXPECT_EQ(again.active(), "p1");
    EXPECT_EQ(again.profiles()[1].state, ProfileState::Enabled);
  }
  ASSERT_TRUE(s.remove_profile("p1"));
  EXPECT_FALSE(s.active()) << "removing the active profile clears active";
  EXPECT_EQ(s.remove_profile("p1").error().code, Code::NotFound);
  EXPECT_EQ(s.new_metadata().id, "p2") << "indices are never reused";
  auto again = f.open();
  ASSERT_EQ(again.profiles().size(), 1u);
  EXPECT_FALSE(again.active());
  EXPECT_EQ(again.generation(), f.anchor.value());
}

TEST(AStore, RefusesDuplicateAndInvalidProfiles) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const uint64_t g = s.generation();
  auto dup = s.add_profile(make_profile(s, kIccid0), sqns_at(1));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Code::AlreadyExists);
  EXPECT_EQ(s.add_profile(make_profile(s, "12345"), sqns_at(1)).error().code, Code::InvalidArgument);
  auto bad_id = make_profile(s, "8988211000000000009");
  bad_id.meta.id = "../p2";
  EXPECT_EQ(s.add_profile(bad_id, sqns_at(1)).error().code, Code::InvalidArgument);
  auto reused = make_profile(s, "8988211000000000009");
  reused.meta.index = 1;
  reused.meta.id = "p1";
  EXPECT_EQ(s.add_profile(reused, sqns_at(1)).error().code, Code::AlreadyExists);
  auto empty_blob = make_profile(s, "8988211000000000009");
  empty_blob.k.private_area.clear();
  EXPECT_EQ(s.add_profile(empty_blob, sqns_at(1)).error().code, Code::InvalidArgument);
  auto no_authority = make_profile(s, "8988211000000000009");
  no_authority.meta.authority.clear();
  auto st = s.add_profile(no_authority, sqns_at(1));
  ASSERT_FALSE(st);
  EXPECT_TRUE(mentions(st.error(), "authority")) << st.error().message;
  auto other = aka::SqnArray::create(aka::SqnParameters{.ind_bits = 4});
  ASSERT_TRUE(other);
  EXPECT_EQ(s.add_profile(make_profile(s, "8988211000000000009"), *other).error().code, Code::InvalidArgument);
  EXPECT_EQ(s.save_sqn_array("p0", *other).error().code, Code::InvalidArgument);
  EXPECT_EQ(s.pin_srk(Bytes{}).error().code, Code::InvalidArgument);
  EXPECT_EQ(s.set_attestation(make_attestation(1, "dsa")).error().code, Code::InvalidArgument);
  EXPECT_EQ(s.generation(), g) << "no refused change was committed";
  EXPECT_EQ(f.anchor.value(), g);
}

TEST(AStore, SavesAndReloadsTheSqnArray) {
  Fixture f;
  {
    auto s = f.open();
    populate(s);
    auto sq = s.sqn_array("p0");
    ASSERT_TRUE(sq);
    ASSERT_TRUE(sq->acceptable(0x1234567));
    sq->accept(0x1234567);
    ASSERT_TRUE(s.save_sqn_array("p0", *sq));
    auto back = s.sqn_array("p0");
    ASSERT_TRUE(back);
    EXPECT_EQ(back->seq(), sq->seq());
  }
  auto s = f.open();
  auto sq = s.sqn_array("p0");
  ASSERT_TRUE(sq);
  EXPECT_EQ(sq->highest(), 0x1234567u);
  EXPECT_FALSE(sq->acceptable(0x1234567)) << "an SQN once accepted stays used after a restart";
}

TEST(AStore, LeavesOtherNamesUnderItsRootAlone) {
  Fixture f;
  fs::create_directories(f.root / "keys");
  spill(f.root / "keys" / "ak.pub", "ak");
  spill(f.root / "notes.tmp.1", "not ours");
  populate(f);
  f.open();
  EXPECT_EQ(slurp(f.root / "keys" / "ak.pub"), "ak");
  EXPECT_EQ(slurp(f.root / "notes.tmp.1"), "not ours");
}

TEST(AStore, RemovesTemporaryFilesAndUnreferencedObjectsAtOpen) {
  Fixture f;
  populate(f);
  const auto before = f.object_files();
  const std::string stray(64, 'a');
  spill(f.root / "objects" / stray, "left by a commit that never happened");
  spill(f.root / "objects" / (stray + ".tmp.77"), "x");
  spill(f.root / "store.json.tmp.1234", "{");
  auto s = f.open();
  EXPECT_EQ(f.object_files(), before);
  EXPECT_FALSE(fs::exists(f.root / "store.json.tmp.1234"));
  EXPECT_EQ(s.profiles().size(), 2u);
}

TEST(AStore, RefusesObjectsWithoutAStoreFile) {
  Fixture f;
  populate(f);
  const auto before = f.object_files();
  fs::remove(f.store_json());
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreCorrupt);
  EXPECT_TRUE(mentions(refused, "store.json")) << refused.message;
  EXPECT_EQ(f.object_files(), before) << "nothing is overwritten or removed";
  EXPECT_FALSE(fs::exists(f.store_json())) << "no empty store is started over them";
}

TEST(AStore, RefusesWhatItDoesNotKnowInObjects) {
  Fixture f;
  populate(f);
  fs::create_directories(f.root / "objects" / "sub");
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreCorrupt);
  EXPECT_TRUE(mentions(refused, "sub")) << refused.message;
  EXPECT_TRUE(fs::exists(f.root / "objects" / "sub"));
}

TEST(AStore, RefusesSymlinksBelowItsRootButFollowsTheRootItself) {
  {
    Fixture f;
    populate(f);
    const fs::path moved = f.dir.path() / "elsewhere.json";
    fs::rename(f.store_json(), moved);
    fs::create_symlink(moved, f.store_json());
    const Error refused = f.refusal();
    EXPECT_EQ(refused.code, Code::StoreCorrupt);
  }
  {
    Fixture f;
    populate(f);
    fs::rename(f.root / "objects", f.dir.path() / "objects");
    fs::create_directory_symlink(f.dir.path() / "objects", f.root / "objects");
    const Error refused = f.refusal();
    EXPECT_EQ(refused.code, Code::StoreCorrupt);
    EXPECT_TRUE(mentions(refused, "objects")) << refused.message;
  }
  {
    Fixture f;  // systemd's DynamicUser=: /var/lib/mcimd → private/mcimd
    populate(f);
    const fs::path link = f.dir.path() / "link";
    fs::create_directory_symlink(f.root, link);
    auto s = Store::open(link, f.anchor);
    ASSERT_TRUE(s) << s.error().describe();
    EXPECT_EQ(s->profiles().size(), 2u);
  }
}

// ---------------------------------------------------------------------------------------------
// Transactions

TEST(ATransaction, EnablesAProfileAsOneCommitAndOneIncrement) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const uint64_t g = s.generation();
  const uint64_t c = f.anchor.value();
  {
    auto t = s.begin();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->set_state("p0", ProfileState::Disabled));
    ASSERT_TRUE(t->set_state("p1", ProfileState::Enabled));
    ASSERT_TRUE(t->set_active("p1"));
    EXPECT_EQ(s.active(), "p0") << "nothing changes before commit()";
    EXPECT_EQ(f.anchor.value(), c);
    ASSERT_TRUE(t->commit());
  }
  EXPECT_EQ(f.anchor.value(), c + 1) << "one counter increment";
  EXPECT_EQ(s.generation(), g + 1);
  EXPECT_EQ(s.active(), "p1");
  auto again = f.open();
  EXPECT_EQ(again.active(), "p1");
  EXPECT_EQ(again.profiles()[0].state, ProfileState::Disabled);
  EXPECT_EQ(again.profiles()[1].state, ProfileState::Enabled);
  EXPECT_EQ(again.generation(), g + 1);
}

TEST(ATransaction, RefusesToCommitAnActiveProfileThatIsDisabledOrRemoved) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const std::string before = slurp(f.store_json());
  const uint64_t c = f.anchor.value();
  {
    auto t = s.begin();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->set_active("p1"));  // p1 is disabled
    auto st = t->commit();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Code::InvalidState);
    EXPECT_TRUE(mentions(st.error(), "p1")) << st.error().message;
  }
  auto disable_active = s.set_state("p0", ProfileState::Disabled);
  ASSERT_FALSE(disable_active);
  EXPECT_EQ(disable_active.error().code, Code::InvalidState);
  {
    auto t = s.begin();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->remove_profile("p0"));
    EXPECT_EQ(t->set_active("p0").error().code, Code::NotFound) << "a removed profile cannot become active";
  }
  EXPECT_EQ(slurp(f.store_json()), before) << "nothing was written";
  EXPECT_EQ(f.anchor.value(), c);
  EXPECT_EQ(s.active(), "p0");
  EXPECT_EQ(s.profiles()[0].state, ProfileState::Enabled);
}

TEST(ATransaction, WithoutAChangeWritesNothing) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const uint64_t g = s.generation();
  int writes = 0;
  set_write_step_hook([&](const fs::path&, WriteStep) { ++writes; });
  {
    auto t = s.begin();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->commit());
  }
  {
    auto t = s.begin();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->set_state("p1", ProfileState::Disabled));  // already disabled
    ASSERT_TRUE(t->set_active("p0"));                         // already active
    ASSERT_TRUE(t->commit());
  }
  ASSERT_TRUE(s.pin_srk(kSrk));
  set_write_step_hook(nullptr);
  EXPECT_EQ(writes, 0);
  EXPECT_EQ(s.generation(), g);
  EXPECT_EQ(f.anchor.value(), g);
}

TEST(ATransaction, IsOneAtATimeAndEndsAtCommit) {
  Fixture f;
  auto s = f.open();
  populate(s);
  {
    auto t = s.begin();
    ASSERT_TRUE(t);
    auto second = s.begin();
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, Code::InvalidState);
    EXPECT_EQ(s.set_active(std::nullopt).error().code, Code::InvalidState) << "conveniences wait as well";
    ASSERT_TRUE(t->set_active(std::nullopt));
    ASSERT_TRUE(t->commit());
    EXPECT_EQ(t->set_active("p0").error().code, Code::InvalidState);
    EXPECT_EQ(t->commit().error().code, Code::InvalidState);
    auto next = s.begin();
    EXPECT_TRUE(next) << "a committed transaction no longer blocks";
  }
  {
    auto dropped = s.begin();
    ASSERT_TRUE(dropped);
    ASSERT_TRUE(dropped->remove_profile("p1"));
  }
  EXPECT_EQ(s.profiles().size(), 2u) << "a dropped transaction changes nothing";
  EXPECT_TRUE(s.begin());
}

TEST(ATransaction, AddsTwoProfilesAndPinsTheSrkInOneCommit) {
  Fixture f;
  auto s = f.open();
  const uint64_t c = f.anchor.value();
  auto t = s.begin();
  ASSERT_TRUE(t);
  auto first = make_profile(s, kIccid0, ProfileState::Enabled);
  auto second = make_profile(s, kIccid1);
  second.meta.index = first.meta.index + 1;
  second.meta.id = "p" + std::to_string(second.meta.index);
  ASSERT_TRUE(t->add_profile(first, sqns_at(1)));
  EXPECT_EQ(t->add_profile(first, sqns_at(1)).error().code, Code::AlreadyExists) << "staged counts as installed";
  auto same_iccid = second;
  same_iccid.meta.iccid = kIccid0;
  EXPECT_EQ(t->add_profile(same_iccid, sqns_at(1)).error().code, Code::AlreadyExists);
  ASSERT_TRUE(t->add_profile(second, sqns_at(1)));
  ASSERT_TRUE(t->set_active("p0"));
  ASSERT_TRUE(t->pin_srk(kSrk));
  ASSERT_TRUE(t->commit());
  EXPECT_EQ(f.anchor.value(), c + 1);
  auto again = f.open();
  EXPECT_EQ(again.profiles().size(), 2u);
  EXPECT_EQ(again.active(), "p0");
  EXPECT_EQ(again.new_metadata().id, "p2");
}

TEST(ATransaction, WhoseIncrementFailedIsCompletedByTheNextOpenAndTheNextCommit) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const uint64_t g = s.generation();
  f.anchor.fail_increments = 1;
  auto st = s.set_state("p1", ProfileState::Enabled);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::TpmFailure);
  EXPECT_EQ(s.generation(), g + 1) << "the change is committed";
  EXPECT_EQ(f.anchor.value(), g);
  {
    auto reopened = f.open();  // a restart completes the increment...
    EXPECT_EQ(reopened.generation(), g + 1);
    EXPECT_EQ(reopened.profiles()[1].state, ProfileState::Enabled);
    EXPECT_EQ(f.anchor.value(), g + 1);
  }
  // ...and so does the next commit of the running store.
  f.anchor.set(g);
  ASSERT_TRUE(s.set_active("p1"));
  EXPECT_EQ(s.generation(), g + 2);
  EXPECT_EQ(f.anchor.value(), g + 2);
}

TEST(ATransaction, RefusesToCommitWhenTheCounterMovedUnderIt) {
  Fixture f;
  auto s = f.open();
  populate(s);
  f.anchor.set(f.anchor.value() + 3);
  auto st = s.set_state("p1", ProfileState::Enabled);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::RollbackDetected);
}

// ---------------------------------------------------------------------------------------------
// Attacks: store.json or objects/ changed by someone with the daemon's (or root's) file access

using NamedEdit = std::pair<const char*, std::function<void(json&)>>;

// Each edit made to its own populated store: open() refuses every one as tampered, with a
// message that mentions `mentioned`.
void expect_each_tampered(const std::vector<NamedEdit>& edits, const std::string& mentioned = "store.json") {
  for (const auto& [name, change] : edits) {
    Fixture f;
    populate(f);
    f.edit(change);
    const Error refused = f.refusal();
    EXPECT_EQ(refused.code, Code::StoreTampered) << name << ": " << refused.describe();
    EXPECT_TRUE(mentions(refused, mentioned)) << name << ": " << refused.message;
  }
}

// The replay the MAC exists for: with every SEQ back at 0 an (RAND, AUTN) already used would be
// accepted again.
TEST(AnEditedStore, WithEverySeqResetIsRefusedAsTampered) {
  Fixture f;
  populate(f);
  f.edit([](json& j) {
    for (auto& v : j["state"]["profiles"][0]["sqn"]["seq"]) v = 0;
  });
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreTampered);
  EXPECT_TRUE(mentions(refused, "MAC")) << refused.message;
  EXPECT_TRUE(mentions(refused, "store.json")) << refused.message;
}

TEST(AnEditedStore, WithARewrittenSrkIsRefusedAsTampered) {
  Fixture f;
  populate(f);
  f.edit([](json& j) { j["state"]["srk"] = base64url_encode(Bytes{0x00, 0x04, 9, 9, 9, 9}); });
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreTampered);
}

TEST(AnEditedStore, WithAFlippedStateOrActiveIsRefusedAsTampered) {
  const std::vector<NamedEdit> edits = {
      {"enable p1", [](json& j) { j["state"]["profiles"][1]["state"] = "enabled"; }},
      {"disable p0", [](json& j) { j["state"]["profiles"][0]["state"] = "disabled"; }},
      {"clear active", [](json& j) { j["state"]["active"] = nullptr; }},
      {"switch to p1",
       [](json& j) {
         j["state"]["profiles"][1]["state"] = "enabled";
         j["state"]["active"] = "p1";
       }},
  };
  expect_each_tampered(edits);
}

TEST(AnEditedStore, WithSwappedKBlobsIsRefusedAsTamperedAtOpenAndOnRead) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const auto k0 = s.profile("p0")->k.private_area;
  const auto k1 = s.profile("p1")->k.private_area;
  const fs::path a = f.root / "objects" / sha256_hex(k0);
  const fs::path b = f.root / "objects" / sha256_hex(k1);
  spill(a, std::string(k1.begin(), k1.end()));
  spill(b, std::string(k0.begin(), k0.end()));
  auto read = s.profile("p0");  // the running store re-hashes on every read
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Code::StoreTampered);
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreTampered);
  EXPECT_TRUE(mentions(refused, "objects/")) << refused.message;
}

TEST(AnEditedStore, WithATruncatedOrMissingObjectIsRefusedAsTampered) {
  for (bool remove : {false, true}) {
    Fixture f;
    auto s = f.open();
    populate(s);
    ASSERT_TRUE(s.set_attestation(make_attestation(3)));
    const fs::path ak = f.root / "objects" / sha256_hex(make_attestation(3).ak.public_area);
    if (remove) {
      fs::remove(ak);
    } else {
      fs::resize_file(ak, 2);
    }
    auto read = s.attestation();
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().code, Code::StoreTampered);
    const Error refused = f.refusal();
    EXPECT_EQ(refused.code, Code::StoreTampered) << refused.describe();
  }
}

TEST(AnEditedStore, WithoutItsMacIsRefusedAsTampered) {
  const std::vector<NamedEdit> edits = {
      {"removed", [](json& j) { j.erase("mac"); }},
      {"null", [](json& j) { j["mac"] = nullptr; }},
      {"short", [](json& j) { j["mac"] = base64url_encode(Bytes(16, 1)); }},
      {"another", [](json& j) { j["mac"] = base64url_encode(Bytes(32, 1)); }},
  };
  expect_each_tampered(edits, /*mentioned=*/"MAC");
}

TEST(AnEditedStore, MacdUnderAnotherKeyIsRefusedAsTampered) {
  Fixture f;
  populate(f);
  f.anchor.key = Bytes(32, 0x33);  // another TPM's store key
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreTampered);
}

// The canonical text is what the MAC covers, not the file's bytes.
TEST(AnEditedStore, WithOnlyWhitespaceAndKeyOrderChangedIsAccepted) {
  Fixture f;
  populate(f);
  auto doc = nlohmann::ordered_json::parse(slurp(f.store_json()));
  std::function<nlohmann::ordered_json(const nlohmann::ordered_json&)> reversed =
      [&](const nlohmann::ordered_json& v) -> nlohmann::ordered_json {
    if (v.is_object()) {
      nlohmann::ordered_json out = nlohmann::ordered_json::object();
      std::vector<std::string> keys;
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
      for (auto k = keys.rbegin(); k != keys.rend(); ++k) out[*k] = reversed(v[*k]);
      return out;
    }
    if (v.is_array()) {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& e : v) out.push_back(reversed(e));
      return out;
    }
    return v;
  };
  const std::string text = reversed(doc).dump(3);
  ASSERT_NE(text.find("\"state\""), std::string::npos);
  ASSERT_LT(text.find("\"state\""), text.find("\"format\"")) << "the keys really are reordered";
  spill(f.store_json(), "\n  " + text + "\n\n");
  auto s = f.try_open();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->active(), "p0");
}

// What earlier versions wrote, MAC'd under the same key and label: format 3 without deletion
// bindings, replacements, command counters, subscriber keys or deletion records; format 2 also
// without profile rules, origin or provisioning state.
void rewrite_as_format(Fixture& f, int format) {
  auto j = json::parse(slurp(f.store_json()));
  for (auto& p : j["state"]["profiles"]) {
    for (const char* field : {"deletion", "replaces", "command_counter", "subscriber_key", "previous"}) p.erase(field);
    if (format < 3) {
      p.erase("rules");
      p.erase("origin");
    }
  }
  j["state"].erase("deletions");
  if (format < 3) j["state"].erase("provisioning");
  j["format"] = format;
  const std::string canonical = j["state"].dump();
  Bytes input(std::string_view("mcimd-store-v2\0", 15).begin(), std::string_view("mcimd-store-v2\0", 15).end());
  input.insert(input.end(), canonical.begin(), canonical.end());
  auto mac = f.anchor.mac(input);
  ASSERT_TRUE(mac);
  j["mac"] = base64url_encode(*mac);
  spill(f.store_json(), j.dump());
}
void rewrite_as_format_2(Fixture& f) { rewrite_as_format(f, 2); }

TEST(AStoreOfFormat3, OpensWithoutLifecycleStateAndIsWrittenBackAsFormat4) {
  Fixture f;
  populate(f);
  rewrite_as_format(f, 3);
  auto s = f.open();
  ASSERT_EQ(s.profiles().size(), 2u);
  EXPECT_FALSE(s.profiles()[0].deletion);
  EXPECT_FALSE(s.profiles()[0].replaces);
  EXPECT_EQ(s.profiles()[0].command_counter, 0u);
  EXPECT_TRUE(s.deletions().empty());
  ASSERT_TRUE(s.set_state("p1", ProfileState::Enabled));
  auto j = json::parse(slurp(f.store_json()));
  EXPECT_EQ(j["format"], 4);
  EXPECT_TRUE(j["state"].contains("deletions"));
  EXPECT_TRUE(j["state"]["profiles"][0].contains("deletion"));
  ASSERT_TRUE(f.try_open());
}

TEST(AStoreOfFormat3, WithAFormat4FieldIsCorrupt) {
  Fixture f;
  populate(f);
  rewrite_as_format(f, 3);
  f.edit([](json& j) { j["state"]["deletions"] = json::array(); });
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreCorrupt);
  EXPECT_TRUE(mentions(refused, "is not a field of format 3")) << refused.message;
}

TEST(AStore, KeepsDeletionBindingsReplacementsAndDeletionRecordsAcrossAReopen) {
  Fixture f;
  populate(f);
  {
    auto s = f.open();
    auto bound = make_profile(s, "89490200001234567899");
    bound.meta.deletion = DeletionBinding{0x01300002, 5};
    ASSERT_TRUE(s.add_profile(bound, sqns_at(0)));
    auto twin = make_profile(s, "89490200001234567898");
    twin.meta.deletion = DeletionBinding{0x01300002, 5};
    EXPECT_FALSE(s.add_profile(twin, sqns_at(0))) << "two profiles never share a deletion counter";
    auto tx = s.begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(tx->set_replaces("p1", "p0"));
    ASSERT_TRUE(tx->set_command_counter("p1", 7));
    ASSERT_TRUE(tx->record_deletion(DeletionRecord{"89490200001234567891", "26201", 9, "command", 0x01300009, 12}));
    ASSERT_TRUE(tx->commit());
  }
  auto s = f.open();
  ASSERT_EQ(s.profiles().size(), 3u);
  EXPECT_EQ(s.profiles()[2].deletion, (DeletionBinding{0x01300002, 5}));
  EXPECT_EQ(s.profiles()[1].replaces, "p0");
  EXPECT_EQ(s.profiles()[1].command_counter, 7u);
  ASSERT_EQ(s.deletions().size(), 1u);
  EXPECT_EQ(s.deletions()[0].nv_value, 12u);
  EXPECT_EQ(s.deletions()[0].reason, "command");
  auto tx = s.begin();
  ASSERT_TRUE(tx);
  auto replayed = tx->set_command_counter("p1", 7);
  ASSERT_FALSE(replayed);
  EXPECT_EQ(replayed.error().code, Code::Replayed);
  EXPECT_FALSE(tx->set_replaces("p1", "p1")) << "a profile cannot replace itself";
  EXPECT_FALSE(tx->record_deletion(DeletionRecord{"89490200001234567891", "26201", 9, "whim", 0, 0}));
  // Removing the replaced profile leaves nothing for the replacement to replace.
  ASSERT_TRUE(tx->set_state("p0", ProfileState::Disabled));
  ASSERT_TRUE(tx->remove_profile("p0"));
  ASSERT_TRUE(tx->commit());
  EXPECT_FALSE(f.open().profiles()[0].replaces);
}

// A re-key keeps the previous credentials (and their blobs) until they are dropped or rolled back.
TEST(AStore, KeepsAReKeysPreviousCredentialsUntilDroppedOrRolledBack) {
  Fixture f;
  populate(f);
  const NewCredentials next{Blob{Bytes{0x00, 0x03, 0x51, 0x52, 0x53}, Bytes{0x00, 0x02, 0xcc, 0x01}},
                            Blob{Bytes{0x00, 0x03, 0x61, 0x62, 0x63}, Bytes{0x00, 0x02, 0xdd, 0x01}},
                            DeletionBinding{0x01300009, 3}, "milenage", KeyProtection::TpmAes};
  Blob old_k;
  {
    auto s = f.open();
    old_k = s.profile("p0")->k;
    auto tx = s.begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(tx->rekey("p0", next));
    EXPECT_EQ(tx->rekey("p0", next).error().code, Code::InvalidState) << "one re-key at a time";
    ASSERT_TRUE(tx->commit());
  }
  {
    auto s = f.open();
    auto p = s.profile("p0");
    ASSERT_TRUE(p) << p.error().describe();
    EXPECT_EQ(p->k, next.k);
    ASSERT_TRUE(p->previous_k);
    EXPECT_EQ(*p->previous_k, old_k);
    ASSERT_TRUE(p->meta.previous);
    EXPECT_FALSE(p->meta.previous->deletion);
    EXPECT_EQ(p->meta.deletion, next.deletion);
    ASSERT_TRUE(s.set_state("p1", ProfileState::Enabled));  // an unrelated commit keeps the old blobs
    auto tx = s.begin();
    ASSERT_TRUE(tx->roll_back("p0"));
    ASSERT_TRUE(tx->commit());
  }
  auto s = f.open();
  auto p = s.profile("p0");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k, old_k);
  EXPECT_FALSE(p->meta.previous);
  EXPECT_FALSE(p->meta.deletion);
  EXPECT_EQ(s.begin()->drop_previous("p0").error().code, Code::InvalidState);
}

TEST(AStoreOfFormat2, OpensWithDefaultRulesAndIsWrittenBackInTheCurrentFormat) {
  Fixture f;
  populate(f);
  rewrite_as_format_2(f);
  auto s = f.open();
  ASSERT_EQ(s.profiles().size(), 2u);
  EXPECT_EQ(s.profiles()[0].rules, ProfileRules{});
  EXPECT_FALSE(s.profiles()[0].origin);
  EXPECT_EQ(s.last_package_counter(), 0u);
  EXPECT_EQ(s.active(), "p0");
  EXPECT_EQ(json::parse(slurp(f.store_json()))["format"], 2) << "opening alone writes nothing";
  ASSERT_TRUE(s.set_state("p1", ProfileState::Enabled));
  auto j = json::parse(slurp(f.store_json()));
  EXPECT_EQ(j["format"], 4);
  EXPECT_TRUE(j["state"]["profiles"][0].contains("rules"));
  auto again = f.try_open();
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again->profiles()[1].state, ProfileState::Enabled);
}

TEST(AStoreOfFormat2, WithAFormat3FieldIsCorrupt) {
  Fixture f;
  populate(f);
  rewrite_as_format_2(f);
  f.edit([](json& j) { j["state"]["provisioning"] = json{{"last_counter", 0}, {"installed", json::array()}}; });
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreCorrupt);
  EXPECT_TRUE(mentions(refused, "is not a field of format 2")) << refused.message;
}

TEST(AnEditedStore, OfALaterFormatIsUnsupportedNamingIt) {
  Fixture f;
  populate(f);
  f.edit([](json& j) { j["format"] = 5; });
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::Unsupported);
  EXPECT_TRUE(mentions(refused, "format 5")) << refused.message;
  EXPECT_TRUE(mentions(refused, "later version")) << refused.message;
}

// ---------------------------------------------------------------------------------------------
// Installed packages

InstalledPackage package_record(uint64_t counter, std::string profile = "p0") {
  return InstalledPackage{"pkg-" + std::to_string(counter), Bytes(32, static_cast<uint8_t>(counter)), counter,
                          std::move(profile)};
}

TEST(AStore, RecordsInstalledPackagesWithRulesAndOriginAcrossReopening) {
  Fixture f;
  {
    auto s = f.open();
    auto p = make_profile(s, kIccid0, ProfileState::Enabled);
    p.meta.rules = ProfileRules{.disable_allowed = false, .delete_allowed = false, .fallback_allowed = true,
                                .locked_until = 1900000000};
    p.meta.origin = PackageOrigin{"pkg-7", 7, Bytes(32, 0x07)};
    auto t = s.begin();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->add_profile(p, sqns_at(0)));
    ASSERT_TRUE(t->set_active("p0"));
    ASSERT_TRUE(t->record_package(package_record(7)));
    const uint64_t before = f.anchor.value();
    ASSERT_TRUE(t->commit());
    EXPECT_EQ(f.anchor.value(), before + 1) << "profile, active and package record are one commit";
  }
  auto s = f.open();
  EXPECT_EQ(s.last_package_counter(), 7u);
  ASSERT_EQ(s.installed_packages().size(), 1u);
  EXPECT_EQ(s.installed_packages()[0], package_record(7));
  const ProfileMetadata m = s.profiles()[0];
  EXPECT_FALSE(m.rules.disable_allowed);
  EXPECT_FALSE(m.rules.delete_allowed);
  EXPECT_EQ(m.rules.locked_until, 1900000000u);
  ASSERT_TRUE(m.origin);
  EXPECT_EQ(*m.origin, (PackageOrigin{"pkg-7", 7, Bytes(32, 0x07)}));
}

TEST(AStore, RefusesAPackageCounterNotAboveTheLastAndChangesNothing) {
  Fixture f;
  auto s = f.open();
  ASSERT_TRUE(s.add_profile(make_profile(s, kIccid0), sqns_at(0)));
  {
    auto t = s.begin();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->record_package(package_record(5)));
    ASSERT_TRUE(t->commit());
  }
  const uint64_t generation = s.generation();
  for (uint64_t replayed : {uint64_t{5}, uint64_t{4}, uint64_t{0}}) {
    auto t = s.begin();
    ASSERT_TRUE(t);
    auto r = t->record_package(package_record(replayed));
    ASSERT_FALSE(r) << replayed;
    EXPECT_EQ(r.error().code, Code::Replayed);
  }
  auto t = s.begin();
  ASSERT_TRUE(t);
  auto unknown = t->record_package(package_record(6, "p9"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Code::NotFound);
  auto bad_id = t->record_package(InstalledPackage{"a b", Bytes(32, 1), 6, "p0"});
  ASSERT_FALSE(bad_id);
  EXPECT_EQ(bad_id.error().code, Code::InvalidArgument);
  EXPECT_EQ(s.generation(), generation);
  EXPECT_EQ(s.last_package_counter(), 5u);
}

TEST(AStore, KeepsOnlyTheMostRecentInstalls) {
  Fixture f;
  auto s = f.open();
  ASSERT_TRUE(s.add_profile(make_profile(s, kIccid0), sqns_at(0)));
  auto t = s.begin();
  ASSERT_TRUE(t);
  for (uint64_t c = 1; c <= kMaxInstalledPackages + 3; ++c) ASSERT_TRUE(t->record_package(package_record(c)));
  ASSERT_TRUE(t->commit());
  auto reopened = f.open();
  auto installed = reopened.installed_packages();
  ASSERT_EQ(installed.size(), kMaxInstalledPackages);
  EXPECT_EQ(installed.front().counter, 4u);
  EXPECT_EQ(installed.back().counter, kMaxInstalledPackages + 3);
  EXPECT_EQ(reopened.last_package_counter(), kMaxInstalledPackages + 3);
}

TEST(AnEditedStore, OfFormat1IsUnsupportedNamingTheFormat) {
  Fixture f;
  fs::create_directories(f.root / "profiles" / "p0");
  spill(f.store_json(), R"({"format": 1, "generation": 1000, "next_index": 1, "active": null, "srk": null,
                             "profiles": [{"id": "p0", "metadata_generation": 1000, "sqn_generation": 1000}]})");
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::Unsupported);
  EXPECT_TRUE(mentions(refused, "format 1")) << refused.message;
  auto srk = Store::pinned_srk_at(f.root);
  ASSERT_FALSE(srk);
  EXPECT_EQ(srk.error().code, Code::Unsupported);
}

TEST(AStore, RestoredFromAnOlderCopyIsARollback) {
  Fixture f;
  const fs::path backup = f.dir.path() / "backup";
  {
    auto s = f.open();
    populate(s);
    fs::copy(f.root, backup, fs::copy_options::recursive);
    auto sq = s.sqn_array("p0");
    sq->accept(0x5000);
    ASSERT_TRUE(s.save_sqn_array("p0", *sq));
    ASSERT_TRUE(s.set_state("p1", ProfileState::Enabled));
  }
  fs::remove_all(f.root);
  fs::copy(backup, f.root, fs::copy_options::recursive);
  const std::string restored = slurp(f.store_json());
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::RollbackDetected);
  EXPECT_TRUE(mentions(refused, "older than the TPM counter")) << refused.message;
  EXPECT_TRUE(mentions(refused, "backup"));
  EXPECT_EQ(slurp(f.store_json()), restored) << "a failed check changes nothing";
}

TEST(AStore, BehindTheCounterWithoutATpmRestartIsARollback) {
  Fixture f;
  populate(f);
  f.anchor.set(f.anchor.value() + 1);
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::RollbackDetected);
  EXPECT_TRUE(mentions(refused, "not restarted")) << refused.message;
}

TEST(AStore, BehindTheCounterByMoreThanTheWindowIsARollbackEvenAfterATpmRestart) {
  Fixture f;
  populate(f);
  const uint64_t g = f.anchor.value();
  f.anchor.boot.reset_count += 1;
  f.anchor.set((g + StoreOptions{}.counter_window + 1) | 0xFF);  // ends in all ones, but too far
  EXPECT_EQ(f.refusal().code, Code::RollbackDetected);
  f.anchor.set(g + 10 + (9 + 10 - (g + 10) % 10) % 10 + 10);  // ends in 9 for a window of 10, more than 10 ahead
  EXPECT_EQ(f.anchor.value() % 10, 9u);
  EXPECT_EQ(f.refusal(StoreOptions{.counter_window = 10}).code, Code::RollbackDetected) << "the window is the option's";
}

// A clean reboot restarts the TPM too (resetCount moves) but leaves an orderly counter where it
// was: an old copy of the store restored across a clean reboot is still a rollback.
TEST(AStore, BehindTheCounterAfterACleanTpmRestartIsARollback) {
  Fixture f;
  populate(f);
  const uint64_t g = f.anchor.value();
  f.anchor.boot.reset_count += 1;
  uint64_t c = g + 3;
  if (c % 256 == 255) ++c;  // not the all-ones an unclean start leaves
  f.anchor.set(c);
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::RollbackDetected);
  EXPECT_TRUE(mentions(refused, "all ones")) << refused.message;
}

TEST(AStore, BehindTheCounterWithinTheWindowAfterATpmRestartIsReanchoredOnce) {
  Fixture f;
  populate(f);
  const uint64_t g = f.anchor.value();
  const BootCounts recorded = f.anchor.boot;
  f.anchor.boot.restart_count += 1;
  // What an unclean start leaves: the low bits set to ones (at most a window ahead).
  const uint64_t c = (g | 0xFF) > g ? (g | 0xFF) : g + StoreOptions{}.counter_window;
  f.anchor.set(c);
  {
    auto s = f.try_open();
    ASSERT_TRUE(s) << s.error().describe();
    ASSERT_TRUE(s->opened_after_counter_jump());
    const CounterJump& jump = *s->opened_after_counter_jump();
    EXPECT_EQ(jump.generation, g);
    EXPECT_EQ(jump.counter, c);
    EXPECT_EQ(jump.recorded, recorded);
    EXPECT_EQ(jump.current, f.anchor.boot);
    EXPECT_EQ(s->generation(), c + 1) << "re-anchored by one commit";
    EXPECT_EQ(f.anchor.value(), c + 1);
    EXPECT_EQ(s->active(), "p0");
  }
  auto j = json::parse(slurp(f.store_json()));
  EXPECT_EQ(j["state"]["boot_counts"]["restart_count"], f.anchor.boot.restart_count);
  auto again = f.try_open();
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_FALSE(again->opened_after_counter_jump()) << "the second open needs no window";
  EXPECT_EQ(again->generation(), c + 1);
  // The window served that restart only: the same boot counts do not open it again.
  f.anchor.set(c + 1 + 255);  // all ones again and within the window: refused for the boot counts alone
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::RollbackDetected);
}

TEST(AStore, AheadOfTheCounterByMoreThanOneCommitIsCorrupt) {
  Fixture f;
  populate(f);
  f.anchor.set(f.anchor.value() - 2);
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreCorrupt);
}

// Tests run as root here; anyone else finds a directory of another uid in "/" (root's).
TEST(AStore, InADirectoryOfAnotherUidIsRefusedNamingBothUids) {
  const std::string me = std::to_string(::geteuid());
  if (::geteuid() != 0) {
    test::TempDir dir;
    FakeAnchor anchor(dir.path() / "counter");
    auto s = Store::open("/", anchor);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, Code::StoreCorrupt);
    EXPECT_TRUE(mentions(s.error(), "uid 0")) << s.error().message;
    EXPECT_TRUE(mentions(s.error(), "uid " + me)) << s.error().message;
    return;
  }
  for (const char* dir : {"", "objects"}) {
    Fixture f;
    populate(f);
    const fs::path target = *dir ? f.root / dir : f.root;
    ASSERT_EQ(::chown(target.c_str(), 4242, 4242), 0);
    const std::string before = slurp(f.store_json());
    const Error refused = f.refusal();
    EXPECT_EQ(refused.code, Code::StoreCorrupt);
    EXPECT_TRUE(mentions(refused, target.string())) << refused.message;
    EXPECT_TRUE(mentions(refused, "uid 4242")) << refused.message;
    EXPECT_TRUE(mentions(refused, "uid " + me)) << refused.message;
    EXPECT_EQ(slurp(f.store_json()), before);
  }
}

TEST(APinnedSrkHint, IsReadWithoutTheStoreKey) {
  Fixture f;
  auto none = Store::pinned_srk_at(f.root);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  populate(f);
  f.anchor.key = Bytes(32, 0x44);  // the key is not needed for the hint
  auto srk = Store::pinned_srk_at(f.root);
  ASSERT_TRUE(srk) << srk.error().describe();
  EXPECT_EQ(*srk, kSrk);
  spill(f.store_json(), "{");
  EXPECT_EQ(Store::pinned_srk_at(f.root).error().code, Code::StoreCorrupt);
}

// ---------------------------------------------------------------------------------------------
// Damage: StoreCorrupt naming the file and field, never a crash, before any MAC is computed.

struct Damage {
  const char* name;
  std::function<std::string(std::string)> edit;
  std::vector<const char*> expected;  // substrings of the message
};

void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

class ADamagedStore : public testing::TestWithParam<Damage> {};

TEST_P(ADamagedStore, IsRefusedAsCorruptNamingTheField) {
  const Damage& d = GetParam();
  Fixture f;
  populate(f);
  ASSERT_TRUE(f.open().set_attestation(make_attestation(1)));
  spill(f.store_json(), d.edit(slurp(f.store_json())));
  const Error refused = f.refusal();
  EXPECT_EQ(refused.code, Code::StoreCorrupt) << refused.describe();
  EXPECT_TRUE(mentions(refused, "store.json")) << refused.message;
  for (const char* part : d.expected) EXPECT_TRUE(mentions(refused, part)) << refused.message;
}

std::function<std::string(std::string)> set_field(const char* pointer, json value) {
  return [pointer, value](std::string text) {
    auto j = json::parse(text);
    j[json::json_pointer(pointer)] = value;
    return j.dump();
  };
}

std::function<std::string(std::string)> erase_field(const char* parent, const char* key) {
  return [parent, key](std::string text) {
    auto j = json::parse(text);
    j[json::json_pointer(parent)].erase(key);
    return j.dump();
  };
}

INSTANTIATE_TEST_SUITE_P(
    StoreJson, ADamagedStore,
    testing::Values(
        Damage{"Garbage", [](std::string) { return std::string("{not json"); }, {"JSON"}},
        Damage{"Truncated", [](std::string t) { return t.substr(0, t.size() / 2); }, {"JSON"}},
        Damage{"Empty", [](std::string) { return std::string(); }, {}},
        Damage{"Oversized", [](std::string t) { return t + std::string(1100 * 1024, ' '); }, {"larger than"}},
        Damage{"DeeplyNested", [](std::string) { return std::string(60000, '[') + std::string(60000, ']'); }, {}},
        Damage{"NotAnObject", [](std::string) { return std::string("[1,2]"); }, {"object"}},
        Damage{"FormatMissing", erase_field("", "format"), {"format"}},
        Damage{"FormatAsString", set_field("/format", "2"), {"format"}},
        Damage{"UnknownTopLevelField", set_field("/signature", "x"), {"signature"}},
        Damage{"StateNotAnObject", set_field("/state", json::array()), {"state"}},
        Damage{"UnknownStateField", set_field("/state/extra", 1), {"state.extra"}},
        Damage{"GenerationMissing", erase_field("/state", "generation"), {"state.generation", "missing"}},
        Damage{"GenerationAsString", set_field("/state/generation", "1004"), {"state.generation"}},
        Damage{"NegativeGeneration", set_field("/state/generation", -1), {"state.generation"}},
        Damage{"FractionalGeneration", set_field("/state/generation", 1004.5), {"state.generation"}},
        Damage{"BootCountOver32Bits", set_field("/state/boot_counts/reset_count", uint64_t{1} << 32),
               {"state.boot_counts.reset_count"}},
        Damage{"NextIndexOver32Bits", set_field("/state/next_index", uint64_t{1} << 32), {"state.next_index"}},
        Damage{"ActiveNotAnId", set_field("/state/active", "../p0"), {"state.active"}},
        Damage{"SrkNotBase64", set_field("/state/srk", "a+b/"), {"state.srk"}},
        Damage{"SrkEmpty", set_field("/state/srk", ""), {"state.srk"}},
        Damage{"ProfilesNotArray", set_field("/state/profiles", json::object()), {"state.profiles"}},
        Damage{"ProfileNotObject", set_field("/state/profiles/0", 5), {"state.profiles[0]"}},
        Damage{"UnknownProfileField", set_field("/state/profiles/0/pcr_policy", "sha256:7"),
               {"state.profiles[0].pcr_policy"}},
        Damage{"PathInId", set_field("/state/profiles/0/id", "../../etc"), {"state.profiles[0].id"}},
        Damage{"LeadingZeroId", set_field("/state/profiles/0/id", "p00"), {"state.profiles[0].id"}},
        Damage{"IdOfAnotherIndex", set_field("/state/profiles/0/id", "p1"), {"state.profiles[0].index"}},
        Damage{"ShortIccid", set_field("/state/profiles/0/iccid", "123"), {"state.profiles[0].iccid"}},
        Damage{"LetterInImsi", set_field("/state/profiles/1/imsi", "00101000000000x"), {"state.profiles[1].imsi"}},
        Damage{"ControlCharInOperator", set_field("/state/profiles/0/operator", "001\n01"),
               {"state.profiles[0].operator"}},
        Damage{"BadState", set_field("/state/profiles/0/state", "on"), {"state.profiles[0].state"}},
        Damage{"BadClass", set_field("/state/profiles/0/class", "root"), {"state.profiles[0].class"}},
        Damage{"BadKeyProtection", set_field("/state/profiles/0/key_protection", "none"),
               {"state.profiles[0].key_protection"}},
        Damage{"LongAmf", set_field("/state/profiles/0/amf", "gAAA"), {"state.profiles[0].amf"}},
        Damage{"EmptyAuthority", set_field("/state/profiles/0/authority", ""), {"state.profiles[0].authority"}},
        Damage{"MissingOperator", erase_field("/state/profiles/0", "operator"), {"state.profiles[0].operator"}},
        Damage{"IndBitsOutOfRange", set_field("/state/profiles/0/sqn/ind_bits", 11),
               {"state.profiles[0].sqn.ind_bits"}},
        Damage{"ZeroDelta", set_field("/state/profiles/0/sqn/delta", 0), {"state.profiles[0].sqn.delta"}},
        Damage{"ShortSqnArray", set_field("/state/profiles/0/sqn/seq", json::array({1, 2})),
               {"state.profiles[0].sqn.seq"}},
        Damage{"SeqBeyond43Bits", set_field("/state/profiles/0/sqn/seq/3", uint64_t{1} << 43),
               {"state.profiles[0].sqn.seq[3]"}},
        Damage{"SeqNotNumber", set_field("/state/profiles/0/sqn/seq/0", "x"), {"state.profiles[0].sqn.seq[0]"}},
        Damage{"UpperCaseObjectName", set_field("/state/profiles/0/k/public", std::string(64, 'A')),
               {"state.profiles[0].k.public"}},
        Damage{"ObjectNameWithPath", set_field("/state/profiles/0/opc/private", "../store.json"),
               {"state.profiles[0].opc.private"}},
        Damage{"MissingBlobPart", erase_field("/state/profiles/0/k", "private"), {"state.profiles[0].k.private"}},
        Damage{"BadEkType", set_field("/state/attestation/enrolled_ek_type", "dsa"),
               {"state.attestation.enrolled_ek_type"}},
        Damage{"AttestationNotObject", set_field("/state/attestation", 1), {"state.attestation"}},
        Damage{"RulesMissing", erase_field("/state/profiles/0", "rules"), {"state.profiles[0].rules"}},
        Damage{"RuleNotBoolean", set_field("/state/profiles/0/rules/delete_allowed", 1),
               {"state.profiles[0].rules.delete_allowed"}},
        Damage{"LockedUntilAsText", set_field("/state/profiles/0/rules/locked_until", "2030-01-01"),
               {"state.profiles[0].rules.locked_until"}},
        Damage{"OriginPackageIdWithSlash", set_field("/state/profiles/0/origin",
                                                     json{{"package_id", "a/b"}, {"counter", 1},
                                                          {"package_sha256", std::string(43, 'A')}}),
               {"state.profiles[0].origin.package_id"}},
        Damage{"OriginShortDigest", set_field("/state/profiles/0/origin",
                                              json{{"package_id", "pkg-1"}, {"counter", 1},
                                                   {"package_sha256", "AAAA"}}),
               {"state.profiles[0].origin.package_sha256"}},
        Damage{"ProvisioningMissing", erase_field("/state", "provisioning"), {"state.provisioning"}},
        Damage{"InstalledAboveLastCounter", set_field("/state/provisioning/installed",
                                                      json::array({json{{"package_id", "pkg-1"},
                                                                        {"package_sha256", std::string(43, 'A')},
                                                                        {"counter", 5},
                                                                        {"profile", "p0"}}})),
               {"state.provisioning.installed[0].counter"}},
        Damage{"InstalledProfileNotAnId", set_field("/state/provisioning/installed",
                                                    json::array({json{{"package_id", "pkg-1"},
                                                                      {"package_sha256", std::string(43, 'A')},
                                                                      {"counter", 0},
                                                                      {"profile", "../p0"}}})),
               {"state.provisioning.installed[0].profile"}}),
    [](const testing::TestParamInfo<Damage>& info) { return std::string(info.param.name); });
