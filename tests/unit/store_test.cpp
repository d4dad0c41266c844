// mcim-store: layout, permissions, round trips, anti-rollback and hostile files.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "mcim-store/store.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/store_fixture.hpp"

using namespace mcimd;
using namespace mcimd::store;
namespace fs = std::filesystem;
using json = nlohmann::json;
using test::FileCounter;
using test::sqns_at;

namespace {

struct Fixture {
  test::TempDir dir;
  fs::path root = dir.path() / "store";
  FileCounter counter{dir.path() / "counter"};

  Store open() {
    auto s = Store::open(root, counter);
    if (!s) throw std::runtime_error(s.error().describe());
    return std::move(*s);
  }
};

aka::SqnParameters params() { return aka::SqnParameters{}; }

Profile make_profile(const Store& s, const std::string& iccid, ProfileState state = ProfileState::Disabled) {
  Profile p;
  p.meta = s.new_metadata();
  p.meta.iccid = iccid;
  p.meta.imsi = "001010000000001";
  p.meta.operator_id = "00101";
  p.meta.state = state;
  p.meta.pcr_policy = "sha256:7";
  p.meta.sqn = params();
  uint8_t tag = static_cast<uint8_t>(iccid.back());
  p.k = Blob{Bytes{0x00, 0x03, 0x01, 0x02, tag}, Bytes{0x00, 0x02, 0xaa, tag}};
  p.opc = Blob{Bytes{0x00, 0x03, 0x11, 0x12, tag}, Bytes{0x00, 0x02, 0xbb, tag}};
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void spill(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary | std::ios::trunc) << text; }

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0xffff;
  return st.st_mode & 0777;
}

// Two profiles, p0 enabled and active, p1 disabled; SRK pinned.
void populate(Store& s) {
  ASSERT_TRUE(s.pin_srk(Bytes{0x00, 0x04, 1, 2, 3, 4}));
  ASSERT_TRUE(s.add_profile(make_profile(s, "8988211000000000001", ProfileState::Enabled), sqns_at(0x20)));
  ASSERT_TRUE(s.set_active("p0"));
  ASSERT_TRUE(s.add_profile(make_profile(s, "8988211000000000002"), sqns_at(0x40)));
}

}  // namespace

TEST(AStore, IsCreatedEmptyAtTheCounterValue) {
  Fixture f;
  auto s = f.open();
  EXPECT_EQ(s.generation(), 1000u);
  EXPECT_TRUE(s.profiles().empty());
  EXPECT_FALSE(s.active());
  EXPECT_FALSE(s.pinned_srk());
  EXPECT_TRUE(fs::is_regular_file(f.root / "store.json"));
  EXPECT_TRUE(fs::is_directory(f.root / "profiles"));
  EXPECT_EQ(f.counter.value(), 1000u);
}

TEST(AStore, RoundTripsProfilesAcrossReopening) {
  Fixture f;
  {
    auto s = f.open();
    populate(s);
    EXPECT_EQ(s.generation(), f.counter.value());
  }
  auto s = f.open();
  EXPECT_EQ(s.generation(), 1004u);
  ASSERT_EQ(s.pinned_srk(), (Bytes{0x00, 0x04, 1, 2, 3, 4}));
  EXPECT_EQ(s.active(), "p0");
  auto list = s.profiles();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "p0");
  EXPECT_EQ(list[0].index, 0u);
  EXPECT_EQ(list[0].state, ProfileState::Enabled);
  EXPECT_EQ(list[1].id, "p1");
  EXPECT_EQ(list[1].iccid, "8988211000000000002");
  EXPECT_EQ(list[1].imsi, "001010000000001");
  EXPECT_EQ(list[1].operator_id, "00101");
  EXPECT_EQ(list[1].pcr_policy, "sha256:7");
  EXPECT_EQ(list[1].algorithm, "milenage");
  EXPECT_EQ(list[1].amf, (std::array<uint8_t, 2>{0x80, 0x00}));
  EXPECT_EQ(list[1].sqn.delta, params().delta);
  auto p = s.profile("p1");
  ASSERT_TRUE(p) << p.error().describe();
  auto expected = make_profile(s, "8988211000000000002");
  EXPECT_EQ(p->k.public_area, expected.k.public_area);
  EXPECT_EQ(p->k.private_area, expected.k.private_area);
  EXPECT_EQ(p->opc.public_area, expected.opc.public_area);
  EXPECT_EQ(p->opc.private_area, expected.opc.private_area);
  auto sq = s.sqn_array("p1");
  ASSERT_TRUE(sq);
  EXPECT_EQ(sq->seq(), sqns_at(0x40).seq());
  EXPECT_EQ(s.new_metadata().id, "p2");
  EXPECT_EQ(s.profile("p9").error().code, Code::NotFound);
  EXPECT_EQ(s.profile("../x").error().code, Code::NotFound);
}

TEST(AStore, KeepsDirectoriesAt0700AndFilesAt0600) {
  Fixture f;
  fs::create_directories(f.root);
  fs::permissions(f.root, fs::perms(0755));  // a systemd StateDirectory= default
  auto s = f.open();
  populate(s);
  EXPECT_EQ(mode_of(f.root), 0700u);
  EXPECT_EQ(mode_of(f.root / "profiles"), 0700u);
  EXPECT_EQ(mode_of(f.root / "store.json"), 0600u);
  const fs::path p0 = f.root / "profiles" / "p0";
  EXPECT_EQ(mode_of(p0), 0700u);
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(p0)) {
    names.insert(e.path().filename().string());
    EXPECT_EQ(mode_of(e.path()), 0600u) << e.path();
  }
  EXPECT_EQ(names, (std::set<std::string>{"profile.json", "sqn.json", "k.pub", "k.priv", "opc.pub", "opc.priv"}));
}

TEST(AStore, WritesNoSecretsAndBase64urlBinaryFieldsIntoItsJson) {
  Fixture f;
  auto s = f.open();
  populate(s);
  auto store = json::parse(slurp(f.root / "store.json"));
  EXPECT_EQ(store["srk"], base64url_encode(Bytes{0x00, 0x04, 1, 2, 3, 4}));
  EXPECT_EQ(store["generation"], s.generation());
  auto meta = json::parse(slurp(f.root / "profiles" / "p0" / "profile.json"));
  EXPECT_EQ(meta["amf"], base64url_encode(Bytes{0x80, 0x00}));
  EXPECT_EQ(meta["iccid"], "8988211000000000001");
  for (const char* key : {"k", "opc", "op"}) EXPECT_FALSE(meta.contains(key));
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
  EXPECT_FALSE(fs::exists(f.root / "profiles" / "p1"));
  EXPECT_EQ(s.remove_profile("p1").error().code, Code::NotFound);
  ASSERT_TRUE(s.set_active(std::nullopt));
  EXPECT_EQ(s.new_metadata().id, "p2") << "indices are never reused";
  auto again = f.open();
  ASSERT_EQ(again.profiles().size(), 1u);
  EXPECT_FALSE(again.active());
  EXPECT_EQ(again.generation(), f.counter.value());
}

TEST(AStore, RefusesDuplicateAndInvalidProfiles) {
  Fixture f;
  auto s = f.open();
  populate(s);
  auto dup = s.add_profile(make_profile(s, "8988211000000000001"), sqns_at(1));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Code::AlreadyExists);
  auto bad_iccid = make_profile(s, "12345");
  EXPECT_EQ(s.add_profile(bad_iccid, sqns_at(1)).error().code, Code::InvalidArgument);
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
  auto other = aka::SqnArray::create(aka::SqnParameters{.ind_bits = 4});
  ASSERT_TRUE(other);
  EXPECT_EQ(s.add_profile(make_profile(s, "8988211000000000009"), *other).error().code, Code::InvalidArgument);
  EXPECT_EQ(s.save_sqn_array("p0", *other).error().code, Code::InvalidArgument);
  EXPECT_EQ(s.pin_srk(Bytes{}).error().code, Code::InvalidArgument);
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

TEST(AStore, DetectsTheWholeDirectoryRestoredFromABackup) {
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
  auto s = Store::open(f.root, f.counter);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Code::RollbackDetected);
  EXPECT_NE(s.error().message.find("older than the TPM counter"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("backup"), std::string::npos);
  EXPECT_TRUE(fs::exists(f.root / "profiles" / "p1")) << "a failed check changes nothing";
}

TEST(AStore, DetectsOneProfilesSqnFileRestoredFromABackup) {
  Fixture f;
  const fs::path sqn = f.root / "profiles" / "p0" / "sqn.json";
  const fs::path old = f.dir.path() / "old-sqn.json";
  auto s = f.open();
  populate(s);
  fs::copy_file(sqn, old);
  auto sq = s.sqn_array("p0");
  sq->accept(0x5000);
  ASSERT_TRUE(s.save_sqn_array("p0", *sq));
  fs::copy_file(old, sqn, fs::copy_options::overwrite_existing);

  auto now = s.sqn_array("p0");
  ASSERT_FALSE(now);
  EXPECT_EQ(now.error().code, Code::RollbackDetected);
  auto reopened = Store::open(f.root, f.counter);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().code, Code::RollbackDetected);
  EXPECT_NE(reopened.error().message.find("sqn.json"), std::string::npos) << reopened.error().message;
}

TEST(AStore, DetectsOneProfilesMetadataRestoredFromABackup) {
  Fixture f;
  const fs::path meta = f.root / "profiles" / "p0" / "profile.json";
  const fs::path old = f.dir.path() / "old-profile.json";
  {
    auto s = f.open();
    populate(s);
    fs::copy_file(meta, old);
    ASSERT_TRUE(s.set_state("p0", ProfileState::Disabled));
  }
  fs::copy_file(old, meta, fs::copy_options::overwrite_existing);
  auto s = Store::open(f.root, f.counter);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Code::RollbackDetected);
  EXPECT_NE(s.error().message.find("profile.json"), std::string::npos) << s.error().message;
}

TEST(AStore, RefusesAStoreAheadOfTheCounter) {
  Fixture f;
  {
    auto s = f.open();
    populate(s);
  }
  f.counter.set(f.counter.value() - 2);
  auto s = Store::open(f.root, f.counter);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Code::StoreCorrupt);
}

TEST(AStore, CompletesACommitWhoseCounterIncrementFailed) {
  Fixture f;
  auto s = f.open();
  populate(s);
  const uint64_t g = s.generation();
  f.counter.fail_increments = 1;
  auto st = s.set_state("p1", ProfileState::Enabled);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::TpmFailure);
  EXPECT_EQ(s.generation(), g + 1) << "the change is committed";
  EXPECT_EQ(f.counter.value(), g);
  {
    auto reopened = f.open();  // a restart completes the increment...
    EXPECT_EQ(reopened.generation(), g + 1);
    EXPECT_EQ(reopened.profiles()[1].state, ProfileState::Enabled);
    EXPECT_EQ(f.counter.value(), g + 1);
  }
  // ...and so does the next commit of the running store.
  f.counter.set(g);
  ASSERT_TRUE(s.set_active("p1"));
  EXPECT_EQ(s.generation(), g + 2);
  EXPECT_EQ(f.counter.value(), g + 2);
}

TEST(AStore, RefusesToCommitWhenTheCounterMovedUnderIt) {
  Fixture f;
  auto s = f.open();
  populate(s);
  f.counter.set(f.counter.value() + 3);
  auto st = s.set_state("p1", ProfileState::Enabled);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::RollbackDetected);
}

TEST(AStore, RemovesLeftoverFoldersAndTemporaryFilesAtOpen) {
  Fixture f;
  {
    auto s = f.open();
    populate(s);
  }
  fs::create_directories(f.root / "profiles" / "p7");
  spill(f.root / "profiles" / "p7" / "k.pub", "x");
  spill(f.root / "store.json.tmp.1234", "{");
  spill(f.root / "profiles" / "p0" / "sqn.json.tmp.99", "{");
  auto s = f.open();
  EXPECT_FALSE(fs::exists(f.root / "profiles" / "p7"));
  EXPECT_FALSE(fs::exists(f.root / "store.json.tmp.1234"));
  EXPECT_FALSE(fs::exists(f.root / "profiles" / "p0" / "sqn.json.tmp.99"));
  EXPECT_EQ(s.profiles().size(), 2u);
}

TEST(AStore, RefusesProfileFoldersWithoutAStoreFile) {
  Fixture f;
  {
    auto s = f.open();
    populate(s);
  }
  fs::remove(f.root / "store.json");
  auto s = Store::open(f.root, f.counter);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Code::StoreCorrupt);
  EXPECT_TRUE(fs::exists(f.root / "profiles" / "p0"));
}

// Hostile or damaged files: StoreCorrupt naming the file (and field), never a crash.
struct Damage {
  const char* name;
  const char* file;  // relative to the store root
  std::function<std::string(std::string)> edit;
  std::vector<const char*> expected;  // substrings of the message
};

void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

class ADamagedStore : public testing::TestWithParam<Damage> {};

TEST_P(ADamagedStore, IsRefusedAsCorruptNamingTheFile) {
  const Damage& d = GetParam();
  Fixture f;
  {
    auto s = f.open();
    populate(s);
  }
  const fs::path path = f.root / d.file;
  spill(path, d.edit(slurp(path)));
  auto s = Store::open(f.root, f.counter);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Code::StoreCorrupt) << s.error().describe();
  for (const char* part : d.expected) EXPECT_NE(s.error().message.find(part), std::string::npos) << s.error().message;
}

std::function<std::string(std::string)> set_field(const char* pointer, json value) {
  return [pointer, value](std::string text) {
    auto j = json::parse(text);
    j[json::json_pointer(pointer)] = value;
    return j.dump();
  };
}

INSTANTIATE_TEST_SUITE_P(
    Files, ADamagedStore,
    testing::Values(
        Damage{"Garbage", "store.json", [](std::string) { return std::string("{not json"); }, {"store.json"}},
        Damage{"Truncated", "store.json", [](std::string t) { return t.substr(0, t.size() / 2); }, {"store.json"}},
        Damage{"Empty", "store.json", [](std::string) { return std::string(); }, {"store.json"}},
        Damage{"Oversized", "store.json", [](std::string t) { return t + std::string(300 * 1024, ' '); },
               {"store.json", "larger than"}},
        Damage{"DeeplyNested", "store.json",
               [](std::string) { return std::string(60000, '[') + std::string(60000, ']'); }, {"store.json"}},
        Damage{"NotAnObject", "store.json", [](std::string) { return std::string("[1,2]"); }, {"store.json"}},
        Damage{"GenerationAsString", "store.json", set_field("/generation", "1004"), {"store.json", "generation"}},
        Damage{"NegativeGeneration", "store.json", set_field("/generation", -1), {"store.json", "generation"}},
        Damage{"FutureFormat", "store.json", set_field("/format", 2), {"store.json", "format"}},
        Damage{"PathInId", "store.json", set_field("/profiles/0/id", "../../etc"), {"store.json", "id"}},
        Damage{"LeadingZeroId", "store.json", set_field("/profiles/0/id", "p00"), {"store.json", "id"}},
        Damage{"DuplicateId", "store.json", set_field("/profiles/1/id", "p0"), {"store.json", "id"}},
        Damage{"UnknownActive", "store.json", set_field("/active", "p5"), {"store.json", "active"}},
        Damage{"SrkNotBase64", "store.json", set_field("/srk", "a+b/"), {"store.json", "srk"}},
        Damage{"ProfilesNotArray", "store.json", set_field("/profiles", json::object()), {"store.json", "profiles"}},
        Damage{"ShortIccid", "profiles/p0/profile.json", set_field("/iccid", "123"), {"profile.json", "iccid"}},
        Damage{"LetterInImsi", "profiles/p0/profile.json", set_field("/imsi", "00101000000000x"),
               {"profile.json", "imsi"}},
        Damage{"IndBitsOutOfRange", "profiles/p0/profile.json", set_field("/sqn/ind_bits", 11),
               {"profile.json", "ind_bits"}},
        Damage{"ZeroDelta", "profiles/p0/profile.json", set_field("/sqn/delta", 0), {"profile.json", "delta"}},
        Damage{"BadState", "profiles/p0/profile.json", set_field("/state", "on"), {"profile.json", "state"}},
        Damage{"LongAmf", "profiles/p0/profile.json", set_field("/amf", "gAAA"), {"profile.json", "amf"}},
        Damage{"IdOfAnotherFolder", "profiles/p0/profile.json", set_field("/id", "p1"), {"profile.json", "id"}},
        Damage{"MissingField", "profiles/p0/profile.json",
               [](std::string t) {
                 auto j = json::parse(t);
                 j.erase("operator");
                 return j.dump();
               },
               {"profile.json", "operator"}},
        Damage{"TruncatedMetadata", "profiles/p0/profile.json", [](std::string t) { return t.substr(0, 20); },
               {"profile.json"}},
        Damage{"ShortSqnArray", "profiles/p0/sqn.json", set_field("/seq", json::array({1, 2})), {"sqn.json", "seq"}},
        Damage{"SeqBeyond43Bits", "profiles/p0/sqn.json", set_field("/seq/3", uint64_t{1} << 43),
               {"sqn.json", "seq[3]"}},
        Damage{"SeqNotNumber", "profiles/p0/sqn.json", set_field("/seq/0", "x"), {"sqn.json", "seq[0]"}},
        Damage{"NewerThanAnyCommit", "profiles/p0/sqn.json", set_field("/generation", 999999),
               {"sqn.json", "newer"}},
        Damage{"EmptyBlob", "profiles/p0/k.priv", [](std::string) { return std::string(); }, {"k.priv"}}),
    [](const testing::TestParamInfo<Damage>& info) { return std::string(info.param.name); });

TEST(AStore, RefusesAMissingProfileFile) {
  for (const char* name : {"profile.json", "sqn.json", "k.pub", "k.priv", "opc.pub", "opc.priv"}) {
    Fixture f;
    {
      auto s = f.open();
      populate(s);
    }
    fs::remove(f.root / "profiles" / "p1" / name);
    auto s = Store::open(f.root, f.counter);
    ASSERT_FALSE(s) << name;
    EXPECT_EQ(s.error().code, Code::StoreCorrupt) << name;
    EXPECT_NE(s.error().message.find(name), std::string::npos) << s.error().message;
  }
}

TEST(AStore, RefusesASymlinkInPlaceOfAFile) {
  Fixture f;
  {
    auto s = f.open();
    populate(s);
  }
  const fs::path meta = f.root / "profiles" / "p0" / "profile.json";
  fs::rename(meta, f.dir.path() / "elsewhere.json");
  fs::create_symlink(f.dir.path() / "elsewhere.json", meta);
  auto s = Store::open(f.root, f.counter);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Code::StoreCorrupt);
}
