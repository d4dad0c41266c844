// The shared OpenSSL library context tpm2-tss's per-hash contexts are folded into.
#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

// tpm2-tss's calls share one context (tpm_context_test counts them against swtpm); everyone
// else keeps OpenSSL's behaviour.
TEST(TheEsysLibraryContext, GivesEveryOtherCallerAFreshContextItCanFree) {
  OSSL_LIB_CTX* first = OSSL_LIB_CTX_new();
  OSSL_LIB_CTX* second = OSSL_LIB_CTX_new();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(first, second) << "only tpm2-tss shares one";
  OSSL_LIB_CTX_free(first);
  OSSL_LIB_CTX_free(second);
  // A provider's child context (libcrypto calls OSSL_LIB_CTX_new itself for it) is its own too:
  // load one into a fresh context, use it, unload it.
  OSSL_LIB_CTX* ctx = OSSL_LIB_CTX_new();
  OSSL_PROVIDER* base = OSSL_PROVIDER_load(ctx, "default");
  OSSL_PROVIDER* legacy = OSSL_PROVIDER_load(ctx, "legacy");
  ASSERT_NE(base, nullptr);
  ASSERT_NE(legacy, nullptr) << "Debian's libssl3 ships the legacy provider";
  EVP_MD* md4 = EVP_MD_fetch(ctx, "MD4", nullptr);
  EXPECT_NE(md4, nullptr);
  EVP_MD_free(md4);
  EXPECT_EQ(OSSL_PROVIDER_unload(legacy), 1);
  EXPECT_EQ(OSSL_PROVIDER_unload(base), 1);
  OSSL_LIB_CTX_free(ctx);
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
