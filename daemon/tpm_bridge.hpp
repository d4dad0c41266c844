#pragma once
// The TPM-held K as the AES block cipher aka/ expects: each call runs under the approved policy.
#include "aka/block_cipher.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::daemon {

class TpmAesCipher final : public aka::BlockCipher {
 public:
  TpmAesCipher(tpm::Context::AesKey& key, const tpm::ApprovedPolicy& policy) : key_(key), policy_(policy) {}
  [[nodiscard]] Result<std::vector<aka::Block>> encrypt(std::span<const aka::Block> blocks) override {
    return key_.encrypt_ecb(blocks, policy_);
  }

 private:
  tpm::Context::AesKey& key_;
  const tpm::ApprovedPolicy& policy_;
};

}  // namespace mcimd::daemon
