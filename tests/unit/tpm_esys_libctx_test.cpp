// The shared OpenSSL library context tpm2-tss's per-hash contexts are folded into.
#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

TEST(TheEsysLibraryContext, IsOneContextThatFreeingLeavesUsable) {
  OSSL_LIB_CTX* first = OSSL_LIB_CTX_new();
  OSSL_LIB_CTX* second = OSSL_LIB_CTX_new();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first, second);
  OSSL_LIB_CTX_free(first);
  // As tpm2-tss does it: fetch, hash, free; the context must outlive the free above.
  EVP_MD* md = EVP_MD_fetch(second, "SHA256", nullptr);
  ASSERT_NE(md, nullptr);
  unsigned char out[32];
  unsigned len = 0;
  EXPECT_EQ(EVP_Digest("abc", 3, out, &len, md, nullptr), 1);
  EXPECT_EQ(len, 32u);
  EXPECT_EQ(out[0], 0xba);  // SHA-256("abc") = ba7816bf…
  EVP_MD_free(md);
  OSSL_LIB_CTX_free(second);
}

TEST(TheEsysLibraryContext, LeavesTheDefaultContextAlone) {
  // NULL (the default context) is never the shared one, and freeing it stays a no-op.
  OSSL_LIB_CTX_free(nullptr);
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  ASSERT_NE(md, nullptr);
  EVP_MD_free(md);
}

#include "tests/support/mcimd_instance.hpp"

// The daemon exports both definitions, so tpm2-tss (loaded after it) binds to them.
TEST(TheEsysLibraryContext, IsWhatTheDaemonGivesTpm2Tss) {
  auto r = mcimd::test::run({"nm", "-D", "--defined-only", mcimd::test::binary("daemon/mcimd").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" T OSSL_LIB_CTX_new\n"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find(" T OSSL_LIB_CTX_free\n"), std::string::npos);
}
