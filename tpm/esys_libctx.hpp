#pragma once
// Linked into programs that talk to a TPM (esys_libctx.cpp): tpm2-tss gets one shared OpenSSL
// library context instead of one per hash.
#include <cstddef>

namespace mcimd::tpm {

// How many OpenSSL library contexts the process created through OSSL_LIB_CTX_new so far (the
// shared one counts once), for tests.
std::size_t openssl_library_contexts_created();

}  // namespace mcimd::tpm
