#pragma once
// Adapters from the TPM layer to what aka/ and mcim-store/ expect: the TPM-held K as an AES
// block cipher, and the TPM NV counter as the store's generation counter.
#include <cstdint>

#include "aka/block_cipher.hpp"
#include "mcim-store/store.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::daemon {

class TpmAesCipher final : public aka::BlockCipher {
 public:
  explicit TpmAesCipher(tpm::Context::AesKey& key) : key_(key) {}
  [[nodiscard]] Result<std::vector<aka::Block>> encrypt(std::span<const aka::Block> blocks) override {
    return key_.encrypt_ecb(blocks);
  }

 private:
  tpm::Context::AesKey& key_;
};

// Uses whichever TPM context the current job opened; set it before touching the store.
class TpmCounter final : public store::GenerationCounter {
 public:
  explicit TpmCounter(uint32_t nv_index) : index_(nv_index) {}
  void attach(tpm::Context* ctx) { ctx_ = ctx; }
  [[nodiscard]] Result<uint64_t> read() override {
    if (!ctx_) return fail(Code::Internal, "TPM counter used outside a TPM job");
    return ctx_->counter_read(index_);
  }
  [[nodiscard]] Result<uint64_t> increment() override {
    if (!ctx_) return fail(Code::Internal, "TPM counter used outside a TPM job");
    return ctx_->counter_increment(index_);
  }

 private:
  uint32_t index_;
  tpm::Context* ctx_ = nullptr;
};

// Attaches a context to the counter for one scope, whatever way the scope is left.
class CounterAttachment {
 public:
  CounterAttachment(TpmCounter& counter, tpm::Context& ctx) : counter_(counter) { counter_.attach(&ctx); }
  ~CounterAttachment() { counter_.attach(nullptr); }
  CounterAttachment(const CounterAttachment&) = delete;
  CounterAttachment& operator=(const CounterAttachment&) = delete;

 private:
  TpmCounter& counter_;
};

}  // namespace mcimd::daemon
