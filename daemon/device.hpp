#pragma once
// What the TPM worker keeps from one job to the next: the TPM context with its kept sessions,
// the signed PCR policies, the store and the keys that unlock it, and the credentials of the
// profile in use. Keeping them is what makes an AKA 13 TPM commands instead of two dozen.
// Worker thread only.
//
// Locked and unlocked. The store's MAC key and the counter's auth are derived from an HMAC key
// that lives in the TPM under the same PolicyAuthorize as the profiles, so the store can only be
// verified or changed while a signed policy approves the platform. Any use that finds the PCRs
// changed drops every secret (OPc, K's handle, the derived keys) and locks; a policy that
// approves the new values (added, or kept already) unlocks again.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "daemon/config.hpp"
#include "daemon/platform_policy.hpp"
#include "dbus-api/service.hpp"
#include "mcim-store/store.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::daemon {

class Device final : public store::Anchor {
 public:
  explicit Device(const Config& config);
  ~Device() override;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // The TPM context, opened when there is none: SRK looked up or created and compared with the
  // pinned one (TpmMismatch), clock read for the store's boot counts.
  [[nodiscard]] Result<tpm::Context*> tpm();
  // After every job: a context whose transport was lost is replaced by the next job, and what
  // lived in it (kept sessions, loaded K, tickets, the derived keys) goes with it.
  void after_job();

  // Reads the configured authority and the policies kept under the store.
  [[nodiscard]] Status load_policies(std::vector<std::string>& skipped);
  PlatformPolicies& policies() { return policies_; }

  // Unlocks the store: a kept policy approves the PCRs now (PlatformStateChanged naming the PCRs
  // otherwise), the store key answers under it, the counter accepts the derived auth, and the
  // store opens (MAC, objects and counter checked). Nothing to do when unlocked already.
  [[nodiscard]] Status unlock();
  bool unlocked() const { return unlocked_; }
  // The store as last verified (also while locked, for reading), nullptr before the first unlock.
  store::Store* store() { return store_ ? &*store_ : nullptr; }
  // The active approved policy; only after a successful unlock().
  const tpm::ApprovedPolicy& policy() const { return *policies_.active(); }
  // The active approved policy for a profile's objects: with its deletion binding, when it has one.
  tpm::ApprovedPolicy profile_policy(const store::ProfileMetadata& meta) const;

  // Runs fn with the store unlocked. When fn (or the unlock) fails with PlatformStateChanged,
  // every secret is dropped and the policies are selected again: if another kept policy approves
  // the PCRs now, fn runs once more; otherwise the error names the PCRs that differ.
  template <class F>
  auto approved(F&& fn) -> decltype(fn());
  // Drops every secret and the unlocked state (a policy update; a policy failure), and the
  // TPM's tickets for the policies.
  void lock();

  // K (loaded, when it is a TPM AES object) and OPc (unsealed, locked memory) of the profile in
  // use, kept between AKAs while the policy holds.
  struct Credentials {
    std::string profile_id;
    Bytes k_public;                         // which K this is
    std::optional<tpm::Context::AesKey> k;  // nullopt when K is sealed (unsealed per use instead)
    SecureBytes opc;
  };
  [[nodiscard]] Result<Credentials*> credentials(const store::Profile& profile);
  void drop_credentials() { credentials_.reset(); }

  // "trusted" | "changed" learnt by the last job, for the loop thread's snapshot.
  std::optional<api::PlatformState> platform_state;

  // store::Anchor: the TPM NV counter (auth derived from the store key), the boot counts read
  // when the context opened, and the MAC under the derived key. Fail while locked.
  [[nodiscard]] Result<uint64_t> counter() override;
  [[nodiscard]] Result<uint64_t> increment() override;
  [[nodiscard]] Result<store::BootCounts> boot_counts() override;
  [[nodiscard]] Result<Bytes> mac(std::span<const uint8_t> data) override;

 private:
  struct Keys {
    SecureBytes mac_key;  // HMAC-SHA-256 key of the store's MAC
    SecureBytes nv_auth;  // authValue of the anti-rollback counter
  };
  void drop_secrets();
  [[nodiscard]] Result<tpm::KeyBlob> store_key(tpm::Context& tpm);
  [[nodiscard]] Status ensure_counter(tpm::Context& tpm);
  [[nodiscard]] Result<tpm::CounterSpec> counter_spec() const;
  bool store_exists() const;

  const Config& config_;
  std::unique_ptr<tpm::Context> ctx_;
  store::BootCounts boot_;
  PlatformPolicies policies_;
  std::optional<Keys> keys_;
  std::optional<store::Store> store_;
  std::optional<Credentials> credentials_;
  bool unlocked_ = false;  // set only by a unlock() that got through every step
};

template <class F>
auto Device::approved(F&& fn) -> decltype(fn()) {
  for (int round = 0;; ++round) {
    auto result = [&]() -> decltype(fn()) {
      MCIMD_CHECK(unlock());
      return fn();
    }();
    if (result) {
      platform_state = api::PlatformState::Trusted;
      return result;
    }
    if (result.error().code != Code::PlatformStateChanged) {
      // A store that failed to read or write may hold a state this Device cannot trust: the
      // next use opens it again from disk.
      if (result.error().code == Code::IoError || result.error().code == Code::StoreCorrupt) drop_secrets();
      return result;
    }
    lock();
    if (round > 0) return result;
    // Another kept policy may approve the PCRs now; if none does, name the PCRs that differ.
    auto ctx = tpm();
    if (!ctx) return tl::unexpected(ctx.error());
    auto selected = policies_.select(**ctx);
    if (!selected) {
      platform_state = api::PlatformState::Changed;
      return tl::unexpected(selected.error());
    }
  }
}

}  // namespace mcimd::daemon
