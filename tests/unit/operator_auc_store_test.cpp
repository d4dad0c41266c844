// The AuC records of provisioned subscriptions: private on disk, never overwritten by a new
// subscription, their keys replaced only by a re-key of the same subscription, refused by name
// when damaged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "operator/auc_store.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;
using namespace mcimd::op;

namespace {

AucRecord record(std::string iccid = "8949001234567890123") {
  AucRecord r{std::move(iccid), "001010123456789", {}, {}};
  r.k.assign(16, 0x11);
  r.opc.assign(16, 0x22);
  return r;
}

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

// The record of record()'s ICCID reads back with its IMSI and K, OPc filled with these bytes.
void expect_keys(const std::filesystem::path& auc, uint8_t k, uint8_t opc) {
  auto back = read_auc_record(auc, "8949001234567890123");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->imsi, "001010123456789");
  EXPECT_EQ(back->k, SecureBytes(16, k));
  EXPECT_EQ(back->opc, SecureBytes(16, opc));
}

}  // namespace

TEST(AnAucStore, KeepsEachRecordPrivateAndReadsItBack) {
  test::TempDir dir;
  const auto auc = dir.path() / "auc";
  ASSERT_TRUE(write_auc_record(auc, record()));
  EXPECT_EQ(mode_of(auc), 0700u);
  EXPECT_EQ(mode_of(auc / "8949001234567890123.json"), 0600u);
  expect_keys(auc, 0x11, 0x22);
}

TEST(AnAucStore, NeverReplacesTheKeysOfASubscription) {
  test::TempDir dir;
  ASSERT_TRUE(write_auc_record(dir.path(), record()));
  auto other = record();
  other.k.assign(16, 0x33);
  auto again = write_auc_record(dir.path(), other);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::AlreadyExists);
  EXPECT_EQ(read_auc_record(dir.path(), "8949001234567890123")->k, SecureBytes(16, 0x11));
}

TEST(AnAucStore, ReplacesTheKeysOfARekeyedSubscriptionKeepingTheRecordPrivate) {
  test::TempDir dir;
  const auto auc = dir.path() / "auc";
  ASSERT_TRUE(write_auc_record(auc, record()));
  auto rekeyed = record();
  rekeyed.k.assign(16, 0x33);
  rekeyed.opc.assign(16, 0x44);
  ASSERT_TRUE(replace_auc_keys(auc, rekeyed));
  EXPECT_EQ(mode_of(auc / "8949001234567890123.json"), 0600u);
  expect_keys(auc, 0x33, 0x44);
  // No temporary file is left beside it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(auc), std::filesystem::directory_iterator()), 1);
}

TEST(AnAucStore, ReplacesKeysOnlyOfAnExistingRecordOfTheSameImsi) {
  test::TempDir dir;
  EXPECT_EQ(replace_auc_keys(dir.path(), record()).error().code, Code::NotFound);
  ASSERT_TRUE(write_auc_record(dir.path(), record()));
  auto other_imsi = record();
  other_imsi.imsi = "001010999999999";
  other_imsi.k.assign(16, 0x33);
  auto r = replace_auc_keys(dir.path(), other_imsi);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::InvalidArgument);
  EXPECT_NE(r.error().message.find("IMSI 001010123456789"), std::string::npos) << r.error().message;
  auto short_opc = record();
  short_opc.opc.resize(15);
  EXPECT_EQ(replace_auc_keys(dir.path(), short_opc).error().code, Code::InvalidArgument);
  EXPECT_EQ(read_auc_record(dir.path(), "8949001234567890123")->k, SecureBytes(16, 0x11));
}

TEST(AnAucStore, RefusesMalformedRecordsByName) {
  test::TempDir dir;
  auto bad = record("12345");
  EXPECT_EQ(write_auc_record(dir.path(), bad).error().code, Code::InvalidArgument);
  auto short_k = record();
  short_k.k.resize(15);
  EXPECT_EQ(write_auc_record(dir.path(), short_k).error().code, Code::InvalidArgument);
  EXPECT_EQ(read_auc_record(dir.path(), "8949001234567890999").error().code, Code::NotFound);
  EXPECT_EQ(read_auc_record(dir.path(), "../../etc/passwd").error().code, Code::InvalidArgument);

  for (const char* text : {"not json", R"({"format":"mcim-operator-auc-1","iccid":"8949001234567890123"})",
                           R"({"format":"mcim-operator-auc-1","iccid":"8949001234567890124","imsi":"001010123456789","k":"11111111111111111111111111111111","opc":"22222222222222222222222222222222"})",
                           R"({"format":"mcim-operator-auc-1","iccid":"8949001234567890123","imsi":"001010123456789","k":"11","opc":"22222222222222222222222222222222"})",
                           R"({"format":"mcim-operator-auc-1","iccid":"8949001234567890123","imsi":"001010123456789","k":7,"opc":"22222222222222222222222222222222"})"}) {
    std::ofstream(dir.path() / "8949001234567890123.json", std::ios::trunc) << text;
    auto r = read_auc_record(dir.path(), "8949001234567890123");
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, Code::StoreCorrupt) << text << ": " << r.error().message;
  }
}
