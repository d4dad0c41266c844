#pragma once
// Client side of org.mcimd.Tre1: typed calls for mcimctl and tests. Each call is synchronous
// and returns the D-Bus error unchanged (name and message), so callers can tell the daemon's
// errors (org.mcimd.Tre1.Error.*) from the bus's (org.freedesktop.DBus.Error.AccessDenied, ...).
#include <cstdint>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "common/bytes.hpp"
#include "dbus-api/bus_handles.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::api {

struct CallError {
  std::string name;  // "org.mcimd.Tre1.Error.NotFound", "org.freedesktop.DBus.Error.AccessDenied", ...
  std::string message;
  // The last dot-separated component of name: "NotFound", "AccessDenied".
  std::string short_name() const;
};

// Name used when no bus connection could be made (a standard D-Bus error name).
inline constexpr const char* kNoServerError = "org.freedesktop.DBus.Error.NoServer";

// How long an attestation call may take. TPM2_CreatePrimary of an RSA-2048 EK searches for
// primes; discrete TPMs take tens of seconds for it, and a quote over a large event log adds a
// few more. sd-bus's default of 25 s is too short for that.
inline constexpr uint64_t kAttestationTimeoutUsec = 120'000'000;

template <class T>
using CallResult = tl::expected<T, CallError>;

struct ProfileProperties {
  std::string path;
  uint32_t index = 0;
  std::string iccid, imsi, operator_id, state, profile_class;
};

struct ManagerProperties {
  std::string active_profile;  // object path, "/" when none
  std::string platform_state;
};

class Client {
 public:
  // Connects to the bus at `address` ("unix:path=..."), or to the system bus without one
  // (sd_bus_open_system, which honours DBUS_SYSTEM_BUS_ADDRESS).
  [[nodiscard]] static CallResult<Client> connect(const std::optional<std::string>& address);

  [[nodiscard]] CallResult<std::vector<std::string>> list_profiles();
  // Every profile with its properties from one ObjectManager.GetManagedObjects call, in index order.
  [[nodiscard]] CallResult<std::vector<ProfileProperties>> managed_profiles();
  [[nodiscard]] CallResult<ProfileProperties> profile(const std::string& path);
  [[nodiscard]] CallResult<ManagerProperties> manager();

  // `fd` must be readable; the daemon reads the document from it.
  [[nodiscard]] CallResult<std::string> install_profile(int fd);
  [[nodiscard]] CallResult<void> enable_profile(const std::string& path);
  [[nodiscard]] CallResult<void> disable_profile(const std::string& path);
  [[nodiscard]] CallResult<void> delete_profile(const std::string& path);

  [[nodiscard]] CallResult<UmtsAuthResult> umts_authenticate(const std::string& path, const Bytes& rand,
                                                             const Bytes& autn);
  [[nodiscard]] CallResult<UmtsAuthResult> ims_authenticate(const std::string& path, const Bytes& rand,
                                                            const Bytes& autn);
  [[nodiscard]] CallResult<std::vector<GsmAuthResult>> gsm_authenticate(const std::string& path,
                                                                        const std::vector<Bytes>& rands);

  // org.mcimd.Tre1.Attestation (admin). Arguments are sent as given: the daemon checks them.
  // These calls wait up to kAttestationTimeoutUsec, since creating an RSA EK or the AK on a discrete
  // TPM may take tens of seconds.
  // ek_certificate is nullopt when the daemon answers an empty one.
  [[nodiscard]] CallResult<EndorsementData> get_endorsement(const std::string& ek_type);
  // The reply's copy of the secret is wiped once read.
  [[nodiscard]] CallResult<SecureBytes> activate_credential(const std::string& ek_type, const Bytes& credential_blob,
                                                            const Bytes& encrypted_secret);
  [[nodiscard]] CallResult<std::string> get_evidence(const Bytes& nonce);
  [[nodiscard]] CallResult<PlatformReport> validate_platform(const std::string& signed_policy, const Bytes& nonce);

  // Signed PCR policies (org.mcimd.Tre1.Manager).
  [[nodiscard]] CallResult<std::string> add_pcr_policy(const std::string& document);
  [[nodiscard]] CallResult<std::vector<PcrPolicyInfo>> list_pcr_policies();

  // Remote provisioning (the agent's calls).
  [[nodiscard]] CallResult<std::string> request_package(const std::string& session, const Bytes& operator_nonce);
  struct Installed {
    std::string profile;  // object path
    std::string receipt;  // mcimd-install-receipt-1 JSON
  };
  [[nodiscard]] CallResult<Installed> install_package(const std::string& package);
  // Manager.ChangeSubscription: the old operator's release and the new operator's package.
  [[nodiscard]] CallResult<Installed> change_subscription(const std::string& release, const std::string& package);
  // Manager.ConfirmProfile (profile object path): the deletion receipt of the profile it replaced.
  [[nodiscard]] CallResult<std::string> confirm_profile(const std::string& profile_path);
  // Manager.DeletionReceipts.
  [[nodiscard]] CallResult<std::vector<std::string>> deletion_receipts();
  // Manager.ApplyCommand: the result summary (JSON).
  [[nodiscard]] CallResult<std::string> apply_command(const std::string& command);
  // Manager.RequestFallback.
  [[nodiscard]] CallResult<void> request_fallback();

 private:
  explicit Client(SdBus bus) : bus_(std::move(bus)) {}
  CallResult<void> profile_command(const char* member, const std::string& path);
  CallResult<UmtsAuthResult> umts_like(const char* member, const std::string& path, const Bytes& rand,
                                       const Bytes& autn);

  SdBus bus_;
};

}  // namespace mcimd::api
