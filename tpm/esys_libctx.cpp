// One OpenSSL library context for tpm2-tss, linked into the programs that talk to a TPM.
//
// tpm2-tss 3.2 (Debian 12) creates a new OSSL_LIB_CTX for every hash and HMAC it computes for a
// session, and frees it again: each one loads the default provider, imports every legacy
// algorithm name and seeds a DRBG. Measured with callgrind on mcimd, that is two thirds of all
// instructions of a UMTS AKA, about 0.3 ms per hash on the development machine, a dozen hashes
// per authorised command. (tpm2-tss 4 moved to one context.) These two definitions in the
// executable come first in the dynamic linker's search order, so tpm2-tss's calls reach them:
// every context it asks for is one shared context, created once with OpenSSL's own function,
// and freeing it is a no-op; any other context is freed as before. Nothing else in mcimd creates
// library contexts.
#include <dlfcn.h>
#include <openssl/crypto.h>

#include <cstdlib>

namespace {

template <class F>
F real(const char* name) {
  // The versioned symbol first: the one libcrypto 3 exports.
  void* f = dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0");
  if (!f) f = dlsym(RTLD_NEXT, name);
  if (!f) std::abort();  // libcrypto is not loaded: nothing could have asked for a context
  return reinterpret_cast<F>(f);
}

OSSL_LIB_CTX* shared_context() {
  static OSSL_LIB_CTX* const shared = real<OSSL_LIB_CTX* (*)()>("OSSL_LIB_CTX_new")();
  return shared;
}

}  // namespace

extern "C" OSSL_LIB_CTX* OSSL_LIB_CTX_new() { return shared_context(); }

extern "C" void OSSL_LIB_CTX_free(OSSL_LIB_CTX* ctx) {
  if (ctx == nullptr || ctx == shared_context()) return;
  real<void (*)(OSSL_LIB_CTX*)>("OSSL_LIB_CTX_free")(ctx);
}
