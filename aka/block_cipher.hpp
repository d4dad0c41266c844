#pragma once
// The AES-128 block function Milenage is built on (TS 35.206 §3: E_K). Two implementations:
// the TPM-held key (daemon/, K never in host memory) and OpenSSL (network side and fallback).
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::aka {

using Block = std::array<uint8_t, 16>;

class BlockCipher {
 public:
  virtual ~BlockCipher() = default;
  // ECB-encrypts each block with K. One call = one TPM round trip in the TPM implementation,
  // so callers batch every block they can.
  [[nodiscard]] virtual Result<std::vector<Block>> encrypt(std::span<const Block> blocks) = 0;
};

class OpenSslAes final : public BlockCipher {
 public:
  // key must be 16 bytes (InvalidArgument otherwise).
  [[nodiscard]] static Result<OpenSslAes> create(std::span<const uint8_t> key);
  [[nodiscard]] Result<std::vector<Block>> encrypt(std::span<const Block> blocks) override;
  // Number of encrypt() calls so far (benchmarks count TPM round trips the same way).
  std::size_t calls() const { return calls_; }

 private:
  SecureBytes key_;
  std::size_t calls_ = 0;
};

}  // namespace mcimd::aka
