#pragma once
// mcimd's configuration file (YAML). Every key is known; an unknown key or a bad value is an
// error that names the key and its line, so a typo never silently falls back to a default.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/log.hpp"

namespace mcimd::daemon {

struct TpmConfig {
  std::string tcti = "device:/dev/tpmrm0";
  // Without a resource manager (device:/dev/tpm0, swtpm:, mssim:) every TPM user sees mcimd's
  // loaded K and sessions and could use K as an encryption oracle while a policy approves the
  // platform: refused unless this is false (tests and demos on swtpm).
  bool require_resource_manager = true;
  // The PCRs every signed PCR policy must bind at least (docs/operations.md, "PCR binding").
  // PCR 7 records the Secure Boot policy and the authorities that signed what booted: it stays
  // across updates signed by the same vendor keys and moves when Secure Boot is disabled or the
  // key databases change.
  std::string pcrs = "sha256:7";
  // The policy authority's public key (PEM, ECC P-256): profiles are bound to it by
  // PolicyAuthorize, and only PCR policies it signed unlock them. Empty: profiles cannot be
  // installed or used (attestation still works).
  std::filesystem::path policy_authority;
  // PCRs 16 (debug) and 23 (application) can be reset by any process without a reboot, so a
  // policy naming them binds nothing; refused unless allowed here (demos and tests).
  bool allow_resettable_pcrs = false;
  uint32_t nv_counter_index = 0x01004d43;  // owner NV range (TCG registry: 0x01000000–0x013FFFFF)
  // Each profile's deletion counter is at this index plus the profile's index (owner NV range).
  uint32_t deletion_counter_base = 0x01300000;
  unsigned retries = 8;                  // bound on TPM_RC_RETRY/YIELDED/TESTING/PCR_CHANGED
  // How new profiles keep K: "tpm-aes" (an AES key object, Milenage's AES runs in the TPM) or
  // "sealed" (the fallback for TPMs without TPM2_EncryptDecrypt2: K is sealed and unsealed into
  // locked, wiped memory for each authentication).
  std::string key_protection = "tpm-aes";
};

struct AccessConfig {
  std::vector<uid_t> modem_users;
  std::vector<gid_t> modem_groups;
  std::vector<uid_t> admin_users;
  std::vector<gid_t> admin_groups;
  std::vector<uid_t> agent_users;   // the provisioning agent: attestation and packages only
  std::vector<gid_t> agent_groups;
};

// Remote provisioning: whose MCIM packages mcimd accepts.
struct OperatorConfig {
  std::string id;                   // the operator_id its packages carry (1-64 printable ASCII)
  std::filesystem::path anchors;    // PEM CA certificates its package signers chain to
};
struct ProvisioningConfig {
  std::vector<OperatorConfig> operators;  // none: every package is refused (UntrustedSigner)
};

struct AttestationConfig {
  std::vector<unsigned> pcrs;  // quoted in every allocated bank; empty = 0–23
  std::filesystem::path event_log = "/sys/kernel/security/tpm0/binary_bios_measurements";
  std::filesystem::path ima_log = "/sys/kernel/security/ima/ascii_runtime_measurements";
  // Certificates (PEM) whose holders may sign reference policies for semi-autonomous
  // validation; none = ValidatePlatform is refused.
  std::vector<std::filesystem::path> policy_trust;
};

// What mcimd serves on the system bus besides org.mcimd.Tre1.
struct DbusConfig {
  // oFono's Manager, Modem, SimManager, SimAuthentication and USimApplication objects under the
  // name org.ofono, for clients that only speak oFono (iwd's EAP-SIM/AKA/AKA'). Off by default:
  // owning org.ofono conflicts with a real oFono and needs its own bus policy.
  bool ofono_compat = false;
  // The MNC's length (2 or 3) for the NetworkAccessIdentity and MobileNetworkCode served there;
  // unset: told by an operator id that is the MCC+MNC the IMSI begins with (TS 23.003 §2.2).
  std::optional<int> ofono_compat_mnc_length;
};

struct Config {
  std::filesystem::path store = "/var/lib/mcimd";
  TpmConfig tpm;
  AccessConfig access;
  AttestationConfig attestation;
  ProvisioningConfig provisioning;
  DbusConfig dbus;
  log::Level log_level = log::Level::Info;
  unsigned queue_limit = 64;  // TPM jobs waiting; beyond it callers get Busy
};

// Parses YAML text; `source` names the file in messages. Users and groups may be given by
// name (resolved with getpwnam/getgrnam) or number.
[[nodiscard]] Result<Config> parse_config(std::string_view yaml, std::string_view source);
// True for a TCTI that isolates its client's handles: the kernel's resource manager
// (device:/dev/tpmrm<N>) or the user-space one (tabrmd).
bool tcti_has_resource_manager(std::string_view tcti);
[[nodiscard]] Result<Config> load_config(const std::filesystem::path& path);

}  // namespace mcimd::daemon
