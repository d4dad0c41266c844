#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.hpp"
#include "common/file.hpp"
#include "tests/support/temp_dir.hpp"

using namespace mcimd;

TEST(Hex, RoundTripsAndRejectsBadDigitsWithTheFieldName) {
  auto b = from_hex("00fFa5", "rand");
  ASSERT_TRUE(b);
  EXPECT_EQ(to_hex(*b), "00ffa5");
  auto odd = from_hex("abc", "rand");
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code, Code::InvalidArgument);
  EXPECT_NE(odd.error().message.find("rand"), std::string::npos);
  EXPECT_FALSE(from_hex("zz", "autn"));
  auto len = from_hex("0011", "k", 16);
  ASSERT_FALSE(len);
  EXPECT_NE(len.error().message.find("expected 16 bytes"), std::string::npos);
}

TEST(Base64Url, RoundTripsEveryLengthModThree) {
  for (std::size_t n = 0; n < 10; ++n) {
    Bytes in(n);
    for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<uint8_t>(i * 37 + 250);
    auto text = base64url_encode(in);
    EXPECT_EQ(text.find('='), std::string::npos);
    auto back = base64url_decode(text, "x");
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(*back, in);
  }
  EXPECT_EQ(base64url_encode(Bytes{0xfb, 0xff}), "-_8");
  EXPECT_FALSE(base64url_decode("a+b/", "x"));
}

TEST(AnAtomicWrite, CreatesAPrivateFileAndReplacesWholeContent) {
  test::TempDir dir;
  auto path = dir.path() / "f.json";
  ASSERT_TRUE(write_file_atomic(path, std::string_view("old")));
  ASSERT_TRUE(write_file_atomic(path, std::string_view("new content")));
  auto text = read_text_file(path);
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "new content");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::size_t entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u) << "no temp file may be left behind";
}

TEST(ReadFile, NamesAMissingFileAndRefusesAnOversizedOne) {
  test::TempDir dir;
  auto missing = read_file(dir.path() / "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::NotFound);
  ASSERT_TRUE(write_file_atomic(dir.path() / "big", std::string(100, 'x')));
  auto big = read_file(dir.path() / "big", 10);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Code::InvalidArgument);
}

TEST(EqualCt, ComparesContentAndLength) {
  Bytes a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4};
  EXPECT_TRUE(equal_ct(a, b));
  EXPECT_FALSE(equal_ct(a, c));
  EXPECT_FALSE(equal_ct(a, Bytes{1, 2}));
}

TEST(ARestrictedDirectory, LosesGroupAndOtherAccessAndNamesItsOwner) {
  test::TempDir dir;
  const auto d = dir.path() / "d";
  ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  auto owner = restrict_owned_dir(d, /*follow_symlink=*/false);
  ASSERT_TRUE(owner) << owner.error().describe();
  EXPECT_EQ(*owner, ::geteuid());
  struct stat st {};
  ASSERT_EQ(::lstat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(ARestrictedDirectory, IsASymlinkOnlyWhereOneIsFollowed) {
  test::TempDir dir;
  const auto target = dir.path() / "target";
  const auto link = dir.path() / "link";
  ASSERT_EQ(::mkdir(target.c_str(), 0750), 0);
  std::filesystem::create_directory_symlink(target, link);
  auto refused = restrict_owned_dir(link, /*follow_symlink=*/false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::InvalidArgument);
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u) << "a refused directory is not changed";
  ASSERT_TRUE(restrict_owned_dir(link, /*follow_symlink=*/true));
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(ARestrictedDirectory, RefusesAFileAndAMissingPath) {
  test::TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.path() / "f", std::string_view("x")));
  auto file = restrict_owned_dir(dir.path() / "f", /*follow_symlink=*/true);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, Code::InvalidArgument);
  auto missing = restrict_owned_dir(dir.path() / "nope", /*follow_symlink=*/true);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::NotFound);
}

// Another uid's directory: reported, never changed. Root can make one with chown; anyone else
// finds one in "/", which root owns.
TEST(ARestrictedDirectory, OfAnotherUidIsReportedAndLeftAlone) {
  test::TempDir dir;
  std::filesystem::path foreign = "/";
  uid_t other = 0;
  if (::geteuid() == 0) {
    other = 4242;
    foreign = dir.path() / "foreign";
    ASSERT_EQ(::mkdir(foreign.c_str(), 0755), 0);
    ASSERT_EQ(::chown(foreign.c_str(), other, other), 0);
  }
  struct stat before {};
  ASSERT_EQ(::stat(foreign.c_str(), &before), 0);
  auto owner = restrict_owned_dir(foreign, /*follow_symlink=*/false);
  ASSERT_TRUE(owner) << owner.error().describe();
  EXPECT_EQ(*owner, other);
  struct stat after {};
  ASSERT_EQ(::stat(foreign.c_str(), &after), 0);
  EXPECT_EQ(after.st_mode, before.st_mode);
}

// mlock/munlock do not count: freeing one secret must not unlock the page a neighbour lives on.
TEST(SecureBytes, KeepAPageLockedWhileAnySecretOnItLives) {
  const uintptr_t page_size = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto pages = [&](const mcimd::SecureBytes& s) {
    const auto first = reinterpret_cast<uintptr_t>(s.data()) / page_size;
    const auto last = (reinterpret_cast<uintptr_t>(s.data()) + s.size() - 1) / page_size;
    return static_cast<std::size_t>(last - first + 1);
  };
  const std::size_t before = mcimd::detail::locked_secret_pages();
  auto a = std::make_unique<mcimd::SecureBytes>(32, 0x11);
  auto b = std::make_unique<mcimd::SecureBytes>(32, 0x22);
  EXPECT_GT(mcimd::detail::locked_secret_pages(), before);
  a.reset();
  // Small allocations share pages: b's pages stay counted (and locked) however a's overlapped.
  EXPECT_EQ(mcimd::detail::locked_secret_pages(), before + pages(*b));
  b.reset();
  EXPECT_EQ(mcimd::detail::locked_secret_pages(), before) << "every page is unlocked once its last secret is gone";
}
