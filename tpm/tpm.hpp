#pragma once
// The TPM 2.0 layer over ESAPI. Everything the rest of mcimd asks of a TPM goes through here;
// nothing else in the project includes <tss2/...>. Blobs leave this layer marshaled (tss2-mu)
// so any TPM tool can read them.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::tpm {

inline constexpr uint32_t kSrkHandle = 0x81000001;  // TCG provisioning guidance; systemd uses it too

// PCR bank + indices, e.g. sha256:7,14.
struct PcrSelection {
  std::string bank = "sha256";  // sha1 | sha256 | sha384 | sha512
  std::vector<unsigned> pcrs;
};
// "sha256:0,7" → PcrSelection; InvalidArgument naming the problem.
Result<PcrSelection> parse_pcr_selection(std::string_view text);
std::string to_string(const PcrSelection& sel);

struct PcrValue {
  unsigned index;
  Bytes digest;
};

struct RetryPolicy {
  unsigned max_attempts = 8;                       // TPM_RC_RETRY/YIELDED/TESTING/PCR_CHANGED
  std::chrono::milliseconds backoff{5};            // doubled each attempt
};

// A TPM object blob as stored on disk: marshaled TPM2B_PUBLIC and TPM2B_PRIVATE.
struct KeyBlob {
  Bytes public_area;
  Bytes private_area;
};

struct SealOptions {
  PcrSelection pcrs;   // PolicyPCR over the values current at seal time
  bool no_da = true;   // power cuts must not lock the TPM out
};

// Counts TPM commands sent, for benchmarks and tests (two TPM calls per AKA is a contract).
struct CommandStats {
  uint64_t commands = 0;
  uint64_t encrypt_decrypt = 0;
};

class Context;

// Move-only owner of a loaded transient object; flushes itself unless released.
class Object {
 public:
  Object() = default;
  Object(Context* ctx, uint32_t esys_tr, bool flush_on_destroy);
  Object(Object&& o) noexcept;
  Object& operator=(Object&& o) noexcept;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  ~Object();
  uint32_t handle() const { return tr_; }
  explicit operator bool() const { return ctx_ != nullptr; }
  // Stops the destructor from flushing (persistent objects, objects handed elsewhere).
  uint32_t release();

 private:
  void reset();
  Context* ctx_ = nullptr;
  uint32_t tr_ = 0;
  bool flush_ = false;
};

struct ContextOptions {
  std::string tcti = "device:/dev/tpmrm0";
  RetryPolicy retry;
};

class Context {
 public:
  // Opens the TCTI (tss2-tctildr string) and an ESAPI context. TpmFailure with the decoded RC.
  [[nodiscard]] static Result<std::unique_ptr<Context>> open(const ContextOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The SRK at 0x81000001, created (ECC P-256, RSA-2048 fallback) and persisted when absent.
  // Returns its marshaled TPM2B_PUBLIC so the caller can pin it.
  [[nodiscard]] Result<Bytes> srk_public();

  // --- sealed data (KEYEDHASH) under PolicyPCR --------------------------------------------
  [[nodiscard]] Result<KeyBlob> seal(std::span<const uint8_t> secret, const SealOptions& options);
  // PlatformStateChanged when the PCRs no longer match the policy.
  [[nodiscard]] Result<SecureBytes> unseal(const KeyBlob& blob, const PcrSelection& pcrs);

  // --- AES-128 key objects (K) --------------------------------------------------------------
  [[nodiscard]] Result<KeyBlob> create_aes_key(std::span<const uint8_t> key, const SealOptions& options);
  // A loaded AES key with a policy session ready; encrypt_ecb runs PolicyPCR + EncryptDecrypt2.
  class AesKey {
   public:
    [[nodiscard]] Result<std::vector<std::array<uint8_t, 16>>> encrypt_ecb(
        std::span<const std::array<uint8_t, 16>> blocks);
    AesKey(AesKey&&) noexcept;
    ~AesKey();

   private:
    friend class Context;
    AesKey(Context* ctx, Object key, Object session, PcrSelection pcrs);
    Context* ctx_;
    Object key_;
    Object session_;
    PcrSelection pcrs_;
  };
  [[nodiscard]] Result<AesKey> load_aes_key(const KeyBlob& blob, const PcrSelection& pcrs);
  // Unsupported when the TPM lacks TPM2_EncryptDecrypt2 (or ECB mode).
  [[nodiscard]] Status check_encrypt_decrypt_support();

  // --- NV monotonic counter (anti-rollback) -------------------------------------------------
  // Defines the counter (owner auth empty, NV auth empty, no_da) when absent, returns its value.
  [[nodiscard]] Result<uint64_t> counter_read(uint32_t nv_index);
  [[nodiscard]] Result<uint64_t> counter_increment(uint32_t nv_index);

  // --- PCRs ---------------------------------------------------------------------------------
  [[nodiscard]] Result<std::vector<PcrValue>> pcr_read(const PcrSelection& sel);
  [[nodiscard]] Status pcr_extend(unsigned pcr, std::string_view bank, std::span<const uint8_t> digest);

  const CommandStats& stats() const { return stats_; }
  // Loaded transient objects and sessions that this context created and has not flushed.
  std::size_t live_handles() const;

 private:
  Context() = default;
  friend class Object;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  CommandStats stats_;
};

}  // namespace mcimd::tpm
