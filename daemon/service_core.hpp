#pragma once
// The daemon's service: implements api::Service over the TPM worker, the store and aka/.
// Threading: every public method runs on the sd-event loop thread; every TPM and store access
// runs on the worker thread; the loop keeps a snapshot of the profiles for instant reads.
#include <systemd/sd-event.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aka/block_cipher.hpp"
#include "attestation/device.hpp"
#include "daemon/config.hpp"
#include "daemon/tpm_bridge.hpp"
#include "daemon/tpm_worker.hpp"
#include "dbus-api/service.hpp"
#include "mcim-store/store.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::daemon {

class ServiceCore final : public api::Service {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ServiceCore>> create(sd_event* loop, const Config& config);
  ~ServiceCore() override;

  // Opens the TPM (SRK get-or-create, pinned SRK check), opens the store (rollback check) and
  // loads the profile snapshot. done() runs on the loop thread.
  void start(std::function<void(Status)> done);
  // Stops the worker after the job it is running; queued jobs still complete.
  void stop();
  TpmWorker& worker() { return *worker_; }
  // Human summary for sd_notify STATUS=.
  std::string status_line() const;

  void set_listener(api::ServiceListener* listener) override { listener_ = listener; }
  std::vector<api::ProfileInfo> list_profiles() const override { return profiles_; }
  std::optional<api::ProfileInfo> find_profile(uint32_t index) const override;
  std::string active_profile() const override { return active_; }
  std::string platform_state() const override { return platform_state_; }

  void install_profile(SecureString yaml, api::Reply<api::ProfileInfo> reply) override;
  void enable_profile(const std::string& id, api::Reply<void> reply) override;
  void disable_profile(const std::string& id, api::Reply<void> reply) override;
  void delete_profile(const std::string& id, api::Reply<void> reply) override;
  void umts_authenticate(const std::string& id, Bytes rand, Bytes autn, api::Reply<api::UmtsAuthResult> reply) override;
  void ims_authenticate(const std::string& id, Bytes rand, Bytes autn, api::Reply<api::UmtsAuthResult> reply) override;
  void gsm_authenticate(const std::string& id, std::vector<Bytes> rands,
                        api::Reply<std::vector<api::GsmAuthResult>> reply) override;

  void get_endorsement(const std::string& ek_type, api::Reply<api::EndorsementData> reply) override;
  void activate_credential(const std::string& ek_type, Bytes credential_blob, Bytes encrypted_secret,
                           api::Reply<SecureBytes> reply) override;
  void get_evidence(Bytes nonce, api::Reply<std::string> reply) override;
  void validate_platform(std::string signed_policy, Bytes nonce, api::Reply<api::PlatformReport> reply) override;

 private:
  ServiceCore(const Config& config);

  // What the loop thread learns after each job.
  struct Snapshot {
    std::vector<api::ProfileInfo> profiles;
    std::string active;
    std::optional<std::string> platform_state;
  };
  // Worker-thread state: only touched inside jobs.
  struct Device {
    explicit Device(uint32_t nv_index) : counter(nv_index) {}
    TpmCounter counter;
    std::optional<store::Store> store;
    std::optional<std::string> platform_state;  // set by a job that learnt it
    std::optional<tpm::KeyBlob> ak;              // the attestation key, once loaded or created
  };

  // Opens a TPM context for one job, checks the SRK against the pinned one, runs fn, takes a
  // snapshot; on the loop thread applies the snapshot then replies.
  template <class T>
  void run_job(std::function<Result<T>(tpm::Context&, store::Store&)> fn, api::Reply<T> reply);
  Result<std::unique_ptr<tpm::Context>> open_tpm();
  Snapshot take_snapshot();
  void apply(Snapshot snapshot);

  Result<api::UmtsAuthResult> do_umts(tpm::Context& tpm, store::Store& st, const std::string& id, const Bytes& rand,
                                      const Bytes& autn);
  Result<store::Profile> usable_profile(store::Store& st, const std::string& id);
  // Runs fn with K as a block cipher: the TPM AES object, or (sealed fallback) K unsealed into
  // locked memory behind OpenSSL; and OPc unsealed. Both under the profile's PCR policy.
  template <class T>
  Result<T> with_credentials(tpm::Context& tpm, const store::Profile& profile,
                             const std::function<Result<T>(aka::BlockCipher&, const aka::Block& opc)>& fn);

  // The attestation key: created under the SRK on first use and kept beside the store.
  Result<tpm::KeyBlob> attestation_key(tpm::Context& tpm);
  attestation::EvidenceOptions evidence_options() const;

  Config config_;
  std::unique_ptr<TpmWorker> worker_;
  Device device_;
  api::ServiceListener* listener_ = nullptr;
  std::vector<api::ProfileInfo> profiles_;
  std::string active_;
  std::string platform_state_ = "unknown";
};

}  // namespace mcimd::daemon
