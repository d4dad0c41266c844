#pragma once
// What the D-Bus adapter needs from the daemon, one interface per capability. dbus-api depends
// on nothing else of mcimd's but common/.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::api {

enum class ProfileState { Enabled, Disabled };
enum class ProfileClass { Operational, Bootstrap };
// Whether a signed PCR policy approves the platform as last checked.
enum class PlatformState { Unknown, Trusted, Changed };
// Their names on the bus: "enabled" | "disabled", "operational" | "bootstrap",
// "unknown" | "trusted" | "changed".
std::string_view to_string(ProfileState state);
std::string_view to_string(ProfileClass profile_class);
std::string_view to_string(PlatformState state);

struct ProfileInfo {
  std::string id;           // store id
  uint32_t index = 0;       // object path /org/mcimd/Tre1/Profile/<index>
  std::string iccid;
  std::string imsi;
  std::string operator_id;
  ProfileState state = ProfileState::Disabled;
  ProfileClass profile_class = ProfileClass::Operational;
  bool operator==(const ProfileInfo&) const = default;
};

// oFono's a{say}: RES, CK, IK on success, or AUTS alone on a synchronisation failure.
struct UmtsAuthResult {
  std::optional<SecureBytes> res, ck, ik;
  std::optional<Bytes> auts;
};
struct GsmAuthResult {
  SecureBytes sres;  // 4 bytes
  SecureBytes kc;    // 8 bytes
};

template <class T>
using Reply = std::function<void(Result<T>)>;

// Attestation (TR 33.812 platform validation). ek_type is "ecc" (TCG template L-2, P-256) or
// "rsa" (L-1, RSA-2048).
struct EndorsementData {
  Bytes ek_public;                      // marshaled TPM2B_PUBLIC
  std::optional<Bytes> ek_certificate;  // DER, when the TPM carries one
  Bytes ak_public;                      // marshaled TPM2B_PUBLIC of the daemon's attestation key
};
// Semi-autonomous validation: the device's own verdict on a signed reference policy, bound to a
// quote whose qualifying data is SHA-256 of report_json.
struct PlatformReport {
  std::string report_json;  // protocol::PlatformReport document
  Bytes quote_message;      // marshaled TPMS_ATTEST
  Bytes quote_signature;    // marshaled TPMT_SIGNATURE
};

// A signed PCR policy the daemon keeps (protocol/pcr_policy.hpp).
struct PcrPolicyInfo {
  std::string id;     // first 16 hex digits of the approved policy digest
  std::string pcrs;   // "sha256:7,16"
  bool active = false;  // approves the platform now, as last checked
};

class ServiceListener {
 public:
  virtual ~ServiceListener() = default;
  virtual void profile_added(const ProfileInfo& info) = 0;
  virtual void profile_changed(const ProfileInfo& info) = 0;
  virtual void profile_removed(const ProfileInfo& info) = 0;
  virtual void manager_changed() = 0;  // ActiveProfile / PlatformState
};

// One interface per capability, so that each D-Bus object depends on what it serves only.

// What is installed (cached state: never touches the TPM).
class ProfileCatalog {
 public:
  virtual ~ProfileCatalog() = default;
  virtual std::vector<ProfileInfo> list_profiles() const = 0;
  virtual std::optional<ProfileInfo> find_profile(uint32_t index) const = 0;
  virtual std::string active_profile() const = 0;  // store id or ""
};

// Managing profiles (the admin role).
class ProfileManagement {
 public:
  virtual ~ProfileManagement() = default;
  // Factory installation from a YAML document (see mcim-store parse_factory_profile).
  virtual void install_profile(SecureString yaml, Reply<ProfileInfo> reply) = 0;
  virtual void enable_profile(const std::string& id, Reply<void> reply) = 0;
  virtual void disable_profile(const std::string& id, Reply<void> reply) = 0;
  virtual void delete_profile(const std::string& id, Reply<void> reply) = 0;
};

// The modem stack's authentication with a profile.
class AkaService {
 public:
  virtual ~AkaService() = default;
  virtual void umts_authenticate(const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) = 0;
  virtual void ims_authenticate(const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) = 0;
  virtual void gsm_authenticate(const std::string& id, std::vector<Bytes> rands,
                                Reply<std::vector<GsmAuthResult>> reply) = 0;
};

// Platform validation (TR 33.812). The attestation key is created with the store.
class AttestationService {
 public:
  virtual ~AttestationService() = default;
  virtual void get_endorsement(const std::string& ek_type, Reply<EndorsementData> reply) = 0;
  // TPM2_ActivateCredential with the AK and the EK: the secret only this TPM can release.
  virtual void activate_credential(const std::string& ek_type, Bytes credential_blob, Bytes encrypted_secret,
                                   Reply<SecureBytes> reply) = 0;
  // Remote validation: a protocol::Evidence JSON document for the operator's nonce (1–64 bytes).
  virtual void get_evidence(Bytes nonce, Reply<std::string> reply) = 0;
  // Semi-autonomous validation: checks the JWS-signed reference policy against the operator
  // trust configured, evaluates the platform locally and reports, bound to a quote.
  virtual void validate_platform(std::string signed_policy, Bytes nonce, Reply<PlatformReport> reply) = 0;
};

// The platform state and the signed PCR policies that approve it.
class PlatformService {
 public:
  virtual ~PlatformService() = default;
  virtual PlatformState platform_state() const = 0;  // cached
  // A document of the configured policy authority approving PCR values (a firmware update's):
  // kept, and the store unlocked when it approves the platform now.
  virtual void add_pcr_policy(std::string document, Reply<std::string> reply) = 0;
  virtual void list_pcr_policies(Reply<std::vector<PcrPolicyInfo>> reply) = 0;
};

// Remote provisioning (TR 33.812 §5.1.3.5): the provisioning agent carries the messages between
// the operator and mcimd; mcimd trusts the package's signatures, never the agent.
struct PackageInstall {
  ProfileInfo profile;  // the installed (or, for a repeated install, the already installed) profile
  std::string receipt;  // mcimd-install-receipt-1 JSON, quoted by the AK in the install-receipt domain
};
class ProvisioningService {
 public:
  virtual ~ProvisioningService() = default;
  // An mcimd-package-request-1 JSON document for the operator's session: evidence for the
  // operator's nonce, the SRK certified by the AK, a fresh nonce of mcimd's own (kept in memory
  // until a package uses it or it expires), the last accepted package counter.
  virtual void request_package(std::string session, Bytes operator_nonce, Reply<std::string> reply) = 0;
  // Verifies and installs an MCIM package (JWS compact): the operator's signature chain and its
  // purpose, device, nonce, counter, expiry, algorithm, then TPM2_Import of K and OPc and one store
  // commit; answers with a receipt. The same package again answers with a new receipt for the
  // profile it installed (an agent resuming after a crash), changing nothing.
  virtual void install_package(std::string package, Reply<PackageInstall> reply) = 0;
};

// Lifecycle (TR 33.812 §5.1.3.5.5 / §5.1.3.5.7): change of subscription and deletion receipts.
class LifecycleService {
 public:
  virtual ~LifecycleService() = default;
  // Authorised change of subscription: `release` (JWS, mcimd-release-1) signed by the current
  // operator of the profile it names (or by its subscriber where the package registered one)
  // allows the move to to_operator; `package` is that operator's MCIM package (as
  // install_package checks it). The new profile becomes the active one; the released profile is
  // kept, disabled, until the new one proves itself (its first successful AKA, or
  // confirm_profile), then deleted for good. Every refusal names its reason and leaves an audit
  // record; nothing changes.
  virtual void change_subscription(std::string release, std::string package, Reply<PackageInstall> reply) = 0;
  // The profile proved itself out of band: the profile it replaces is deleted now. Answers with
  // the deletion receipt (mcimd-deletion-receipt-1 JSON). InvalidState when it replaces none.
  virtual void confirm_profile(const std::string& id, Reply<std::string> reply) = 0;
  // Receipts for the recent deletions (mcimd-deletion-receipt-1 JSON, oldest first), quoted anew.
  virtual void deletion_receipts(Reply<std::vector<std::string>> reply) = 0;
  // A remote lifecycle command (JWS, mcimd-command-1) signed by the operator of the profile it
  // names: enable, disable, delete, fallback (to the bootstrap profile) or restore (back from
  // it), with a counter above the profile's last and an expiry. Answers a JSON summary
  // (mcimd-command-result-1) with, for delete, the deletion receipt. Every refusal names its
  // reason and leaves an audit record; nothing changes.
  virtual void apply_command(std::string command, Reply<std::string> reply) = 0;
  // The modem stack's request to fall back to the bootstrap profile (the operational profile
  // cannot attach), where the active profile's rules allow fallback. Switching back is explicit
  // (enable, or the operator's restore command).
  virtual void request_fallback(Reply<void> reply) = 0;
};

// Everything the daemon serves over D-Bus. All calls happen on the event-loop thread;
// asynchronous calls invoke their reply callback later, on the event-loop thread too.
class Service : public ProfileCatalog,
                public ProfileManagement,
                public AkaService,
                public AttestationService,
                public PlatformService,
                public ProvisioningService,
                public LifecycleService {
 public:
  virtual void set_listener(ServiceListener* listener) = 0;
};

// Who may do what: the modem role authenticates and reads, the admin role also manages.
struct AccessPolicy {
  std::vector<uid_t> modem_uids;
  std::vector<gid_t> modem_gids;
  std::vector<uid_t> admin_uids;   // uid 0 is always admin
  std::vector<gid_t> admin_gids;
  std::vector<uid_t> agent_uids;   // the provisioning agent
  std::vector<gid_t> agent_gids;
};

}  // namespace mcimd::api
