#pragma once
// What the D-Bus adapter needs from the daemon. dbus-api depends on nothing else of mcimd's
// but common/. All calls happen on the event-loop thread; asynchronous calls invoke their
// reply callback later, on the event-loop thread too.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::api {

struct ProfileInfo {
  std::string id;           // store id
  uint32_t index = 0;       // object path /org/mcimd/Tre1/Profile/<index>
  std::string iccid;
  std::string imsi;
  std::string operator_id;
  std::string state;        // "enabled" | "disabled"
  std::string profile_class;  // "operational" | "bootstrap"
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

class Service {
 public:
  virtual ~Service() = default;
  virtual void set_listener(ServiceListener* listener) = 0;

  // Cached state: never touches the TPM.
  virtual std::vector<ProfileInfo> list_profiles() const = 0;
  virtual std::optional<ProfileInfo> find_profile(uint32_t index) const = 0;
  virtual std::string active_profile() const = 0;   // store id or ""
  virtual std::string platform_state() const = 0;   // "trusted" | "changed" | "unknown"

  // Factory installation from a YAML document (see mcim-store parse_factory_profile).
  virtual void install_profile(SecureString yaml, Reply<ProfileInfo> reply) = 0;
  virtual void enable_profile(const std::string& id, Reply<void> reply) = 0;
  virtual void disable_profile(const std::string& id, Reply<void> reply) = 0;
  virtual void delete_profile(const std::string& id, Reply<void> reply) = 0;

  virtual void umts_authenticate(const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) = 0;
  virtual void ims_authenticate(const std::string& id, Bytes rand, Bytes autn, Reply<UmtsAuthResult> reply) = 0;
  virtual void gsm_authenticate(const std::string& id, std::vector<Bytes> rands,
                                Reply<std::vector<GsmAuthResult>> reply) = 0;

  // Attestation. The attestation key is created on first use and kept in the store.
  virtual void get_endorsement(const std::string& ek_type, Reply<EndorsementData> reply) = 0;
  // TPM2_ActivateCredential with the AK and the EK: the secret only this TPM can release.
  virtual void activate_credential(const std::string& ek_type, Bytes credential_blob, Bytes encrypted_secret,
                                   Reply<SecureBytes> reply) = 0;
  // Remote validation: a protocol::Evidence JSON document for the operator's nonce (1–64 bytes).
  virtual void get_evidence(Bytes nonce, Reply<std::string> reply) = 0;
  // Semi-autonomous validation: checks the JWS-signed reference policy against the operator
  // trust configured, evaluates the platform locally and reports, bound to a quote.
  virtual void validate_platform(std::string signed_policy, Bytes nonce, Reply<PlatformReport> reply) = 0;

  // Signed PCR policies: a document of the configured policy authority approving PCR values
  // (a firmware update's). Kept, and the store unlocked when it approves the platform now.
  virtual void add_pcr_policy(std::string document, Reply<std::string> reply) = 0;
  virtual void list_pcr_policies(Reply<std::vector<PcrPolicyInfo>> reply) = 0;
};

// Who may do what: the modem role authenticates and reads, the admin role also manages.
struct AccessPolicy {
  std::vector<uid_t> modem_uids;
  std::vector<gid_t> modem_gids;
  std::vector<uid_t> admin_uids;   // uid 0 is always admin
  std::vector<gid_t> admin_gids;
};

}  // namespace mcimd::api
