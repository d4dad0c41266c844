#include "aka/block_cipher.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <string>

#include "common/c_handle.hpp"

namespace mcimd::aka {

namespace {

using CipherCtx = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

// AES-128 (FIPS 197): 16-byte key; Milenage uses nothing else (TS 35.206 §3).
constexpr std::size_t kKeySize = 16;
static_assert(sizeof(Block) == 16, "an AES block is 128 bits");

tl::unexpected<Error> openssl_failure(std::string_view what) {
  std::string message(what);
  unsigned long err = ERR_get_error();
  if (err != 0) {
    char reason[256];
    ERR_error_string_n(err, reason, sizeof reason);
    message += ": ";
    message += reason;
  }
  ERR_clear_error();
  return fail(Code::Internal, std::move(message));
}

}  // namespace

Result<OpenSslAes> OpenSslAes::create(std::span<const uint8_t> key) {
  if (key.size() != kKeySize)
    return fail(Code::InvalidArgument,
                "AES key: expected " + std::to_string(kKeySize) + " bytes, got " + std::to_string(key.size()));
  OpenSslAes aes;
  aes.key_.assign(key.begin(), key.end());
  return aes;
}

Result<std::vector<Block>> OpenSslAes::encrypt(std::span<const Block> blocks) {
  ++calls_;
  std::vector<Block> out(blocks.size());
  if (blocks.empty()) return out;
  if (key_.size() != kKeySize) return fail(Code::InvalidState, "AES key: not set (moved-from cipher)");

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_failure("Failed to allocate an AES context");
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_ecb(), nullptr, key_.data(), nullptr) != 1)
    return openssl_failure("Failed to set the AES key");
  // Whole blocks in, whole blocks out: ECB without padding.
  if (EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) return openssl_failure("Failed to disable AES padding");

  for (std::size_t i = 0; i < blocks.size(); ++i) {
    int written = 0;
    if (EVP_EncryptUpdate(ctx.get(), out[i].data(), &written, blocks[i].data(), static_cast<int>(sizeof(Block))) !=
            1 ||
        written != static_cast<int>(sizeof(Block))) {
      wipe(out.data(), out.size() * sizeof(Block));
      return openssl_failure("Failed to AES-encrypt");
    }
  }
  int tail = 0;
  uint8_t rest[sizeof(Block)];
  if (EVP_EncryptFinal_ex(ctx.get(), rest, &tail) != 1 || tail != 0) {
    wipe(out.data(), out.size() * sizeof(Block));
    return openssl_failure("Failed to finish AES encryption");
  }
  return out;
}

}  // namespace mcimd::aka
