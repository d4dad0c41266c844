#pragma once
// The daemon's service: implements api::Service over the TPM worker, the store and aka/.
// Threading: every public method runs on the sd-event loop thread; every TPM and store access
// runs on the worker thread; the loop keeps a snapshot of the profiles for instant reads.
#include <systemd/sd-event.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aka/block_cipher.hpp"
#include "attestation/device.hpp"
#include "attestation/package_check.hpp"
#include "daemon/config.hpp"
#include "daemon/device.hpp"
#include "daemon/tpm_worker.hpp"
#include "dbus-api/service.hpp"
#include "mcim-store/store.hpp"
#include "protocol/provisioning.hpp"
#include "protocol/quote_domain.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::daemon {

class ServiceCore final : public api::Service {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ServiceCore>> create(sd_event* loop, const Config& config);
  ~ServiceCore() override;

  // Opens the TPM (SRK get-or-create, pinned SRK check), reads the signed PCR policies and
  // unlocks the store when one approves the platform (MAC, objects and counter checked), then
  // takes the profile snapshot. A platform no policy approves, or no configured authority, is not
  // fatal: the daemon serves attestation and waits for a policy. done() runs on the loop thread.
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
  api::PlatformState platform_state() const override { return platform_state_; }

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

  void add_pcr_policy(std::string document, api::Reply<std::string> reply) override;
  void list_pcr_policies(api::Reply<std::vector<api::PcrPolicyInfo>> reply) override;

  void request_package(std::string session, Bytes operator_nonce, api::Reply<std::string> reply) override;
  void install_package(std::string package, api::Reply<api::PackageInstall> reply) override;

  void change_subscription(std::string release, std::string package, api::Reply<api::PackageInstall> reply) override;
  void confirm_profile(const std::string& id, api::Reply<std::string> reply) override;
  void deletion_receipts(api::Reply<std::vector<std::string>> reply) override;
  void apply_command(std::string command, api::Reply<std::string> reply) override;
  void request_fallback(api::Reply<void> reply) override;

 private:
  ServiceCore(const Config& config);

  // What the loop thread learns after each job.
  struct Snapshot {
    std::vector<api::ProfileInfo> profiles;
    std::string active;
    std::optional<api::PlatformState> platform_state;
  };
  // Runs fn on the worker with the kept device state; exceptions become Internal errors; takes
  // a snapshot; on the loop thread applies the snapshot then replies.
  template <class T>
  void run_job(std::function<Result<T>(Device&)> fn, api::Reply<T> reply);
  Snapshot take_snapshot();
  void apply(Snapshot snapshot);

  Result<api::UmtsAuthResult> do_umts(Device& d, const std::string& id, const Bytes& rand, const Bytes& autn);
  // The profile, enabled and bound to the configured authority.
  Result<store::Profile> usable_profile(Device& d, const std::string& id);
  // Runs fn with K as a block cipher (the TPM AES object under the approved policy, or, for the
  // sealed fallback, K unsealed into locked memory behind OpenSSL) and OPc (kept, unsealed).
  template <class T>
  Result<T> with_credentials(Device& d, const store::Profile& profile,
                             const std::function<Result<T>(aka::BlockCipher&, const aka::Block& opc)>& fn);

  // The attestation key: from the store, created under the SRK on first use and committed there.
  // While the store is locked, the one store.json names (unverified; the TPM checks the blob and
  // the operator the key) so a changed platform can still prove what changed.
  Result<tpm::KeyBlob> attestation_key(Device& d);
  Result<tpm::EkType> enrolled_ek_type(Device& d);
  attestation::EvidenceOptions evidence_options() const;

  // Remote provisioning (package_service.cpp). This device's id: its AK's name in hex.
  Result<std::string> device_id(Device& d);
  // The operators whose packages are accepted (provisioning.operators), anchors loaded.
  Result<std::vector<attestation::OperatorTrust>> operator_trust() const;
  // The device nonces of package requests not yet answered: in memory only, so a restart
  // (or a crash) makes the agent ask again rather than letting an old answer in.
  void remember_nonce(const Bytes& nonce, const store::DeletionBinding& deletion);
  std::vector<Bytes> outstanding_nonces();
  // The deletion counter set aside for the request with this device nonce.
  std::optional<store::DeletionBinding> reserved_deletion(const Bytes& nonce) const;
  void forget_nonce(const Bytes& nonce);
  // A package verified for this device, request, TPM and authority, its objects imported: the
  // profile it becomes (disabled, not active), its SQN array and its install record.
  struct CheckedPackage {
    protocol::PackageHeader header;
    Bytes digest;
    store::Profile profile;
    std::optional<aka::SqnArray> sqns;
    store::InstalledPackage record;
  };
  Result<CheckedPackage> check_package(Device& d, const std::string& package);
  // A checked re-key package: the profile's new credentials, its previous ones kept.
  Result<api::PackageInstall> install_rekey(Device& d, CheckedPackage& checked);
  // The answer to a package installed already (the same text): its receipt again; nullopt otherwise.
  std::optional<Result<api::PackageInstall>> installed_already(Device& d, const std::string& package);
  // The install receipt of a recorded package, quoted by the AK (QuoteDomain::InstallReceipt).
  Result<std::string> install_receipt(Device& d, const store::InstalledPackage& installed);

  // Profile lifecycle (lifecycle_service.cpp). The deletion counter a new profile of `index` gets:
  // defined (or found) and its value read; InvalidState when an installed profile uses it.
  Result<store::DeletionBinding> deletion_binding_for(Device& d, uint32_t index);
  // Deletes a profile for good: advances its deletion counter (from then on no copy of its
  // objects is usable, wherever it was kept), then removes it and records the deletion in one
  // commit. A crash between the two is completed by finish_deletions at the next start.
  Result<store::DeletionRecord> delete_for_good(Device& d, const std::string& id, const std::string& reason);
  // Removes (and records) the profiles whose deletion counter moved past their binding; settles
  // a re-key whose old or new credentials' counter moved (a crash after the advance).
  Status finish_deletions(Device& d);
  // Re-key (lifecycle_service.cpp). The profile as its previous credentials make it.
  static Result<store::Profile> previous_credentials_of(const store::Profile& profile);
  // The new credentials failed where the previous ones passed: the new ones' counter advanced
  // (no copy of them is usable again), the previous ones current again, with `sqns` when given.
  Status roll_back_rekey(Device& d, const store::Profile& profile, const aka::SqnArray* sqns);
  // The new credentials passed: the previous ones' counter advanced, then dropped, with `sqns`.
  Status retire_previous_credentials(Device& d, const store::Profile& profile, const aka::SqnArray& sqns);
  // The profile `id` replaces (change of subscription), deleted now that `id` proved itself.
  // nullopt when it replaces none.
  Result<std::optional<store::DeletionRecord>> retire_replaced(Device& d, const std::string& id);
  // The bootstrap profile a fallback switches to: the one with the lowest index. NotFound when none.
  Result<std::string> bootstrap_profile(Device& d);
  // The deletion receipt of a recorded deletion, quoted by the AK (QuoteDomain::DeletionReceipt).
  Result<std::string> deletion_receipt(Device& d, const store::DeletionRecord& record);
  // A payload quoted by the AK in a domain, over PCR 7: (TPMS_ATTEST, TPMT_SIGNATURE).
  Result<tpm::Quote> quote_in_domain(Device& d, protocol::QuoteDomain domain, std::string_view payload);

  Config config_;
  std::unique_ptr<TpmWorker> worker_;
  Device device_;  // worker thread only
  api::ServiceListener* listener_ = nullptr;
  std::vector<api::ProfileInfo> profiles_;
  std::string active_;
  api::PlatformState platform_state_ = api::PlatformState::Unknown;
  struct PendingNonce {
    Bytes nonce;
    store::DeletionBinding deletion;
    std::chrono::steady_clock::time_point expires;
  };
  std::vector<PendingNonce> nonces_;  // worker thread only
};

}  // namespace mcimd::daemon
