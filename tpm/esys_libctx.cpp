// One OpenSSL library context for tpm2-tss, linked into the programs that talk to a TPM.
//
// tpm2-tss 3.2 (Debian 12) creates a new OSSL_LIB_CTX for every hash and HMAC it computes for a
// session, and frees it again: each one loads the default provider, imports every legacy
// algorithm name and seeds a DRBG. Measured with callgrind on mcimd, that is two thirds of all
// instructions of a UMTS AKA, about 0.3 ms per hash on the development machine, a dozen hashes
// per authorised command. (tpm2-tss 4 moved to one context.) These two definitions in the
// executable come first in the dynamic linker's search order, so tpm2-tss's calls reach them:
// every context tpm2-tss asks for is one shared context of its own (not OpenSSL's default one,
// so a provider loaded there never computes its session hashes), created once with OpenSSL's own
// function, and freeing it is a no-op. Any other caller — libcrypto itself, for the child
// contexts of providers — gets OpenSSL's function and frees its contexts as before.
#include "tpm/esys_libctx.hpp"

#include <dlfcn.h>
#include <openssl/crypto.h>

#include <atomic>

#include <cstdlib>
#include <cstring>

namespace {

std::atomic<std::size_t> g_created{0};

template <class F>
F real(const char* name) {
  // The versioned symbol first: the one libcrypto 3 exports.
  void* f = dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0");
  if (!f) f = dlsym(RTLD_NEXT, name);
  if (!f) std::abort();  // libcrypto is not loaded: nothing could have asked for a context
  return reinterpret_cast<F>(f);
}

OSSL_LIB_CTX* create() {
  ++g_created;
  return real<OSSL_LIB_CTX* (*)()>("OSSL_LIB_CTX_new")();
}

OSSL_LIB_CTX* shared_context() {
  static OSSL_LIB_CTX* const shared = create();
  return shared;
}

// Whether the code at `address` is tpm2-tss's ESAPI library.
bool called_from_esys(const void* address) {
  Dl_info info{};
  return dladdr(address, &info) != 0 && info.dli_fname != nullptr &&
         std::strstr(info.dli_fname, "libtss2-esys") != nullptr;
}

}  // namespace

extern "C" OSSL_LIB_CTX* OSSL_LIB_CTX_new() {
  if (called_from_esys(__builtin_return_address(0))) return shared_context();
  return create();
}

std::size_t mcimd::tpm::openssl_library_contexts_created() { return g_created; }

extern "C" void OSSL_LIB_CTX_free(OSSL_LIB_CTX* ctx) {
  if (ctx == nullptr || ctx == shared_context()) return;
  real<void (*)(OSSL_LIB_CTX*)>("OSSL_LIB_CTX_free")(ctx);
}
