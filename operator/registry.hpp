#pragma once
// The operator's device registry (TR 33.812 DPF/RO and PVA state): one record per attestation
// key, from the credential challenge until the device is enrolled, then the clock info of its
// last accepted quote so replayed evidence is refused. Kept in a state directory: 0700, one
// JSON file 0600 per device, every write atomic, one process at a time (flock).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::op {

struct DeviceRecord {
  Bytes ak_name;                         // nameAlg ‖ H(TPMT_PUBLIC): the device id, in hex
  Bytes ak_public;                       // marshaled TPM2B_PUBLIC
  Bytes ek_public;                       // marshaled TPM2B_PUBLIC
  std::optional<Bytes> ek_certificate;   // DER, as the enrolment request carried it
  bool enrolled = false;                 // the device proved the AK and EK share a TPM
  // The operator enrolled the EK without a certificate (--allow-uncertified-ek): no manufacturer
  // vouches that it is in a genuine TPM. Shown in every verification of the device.
  bool uncertified_ek = false;
  // SHA-256 of the secret of the outstanding credential challenge. The secret is 32 random
  // bytes, so its hash cannot be inverted and the secret itself never reaches the disk.
  std::optional<Bytes> pending_secret_sha256;
  std::optional<attestation::ClockInfo> last_clock;  // of the last accepted quote
};

// The device id the operator prints and accepts: the AK name in lower-case hex.
std::string device_id(std::span<const uint8_t> ak_name);

// How an uncertified EK shows in enrolment and verification output.
inline constexpr std::string_view kUncertifiedEk =
    "not checked: the EK has no certificate; the operator enrolled it as uncertified (--allow-uncertified-ek)";

class DeviceRegistry {
 public:
  // Opens the state directory (with `create`, creating it 0700 if absent; else NotFound when
  // absent) and takes its lock, blocking while another mcim-operator holds it. The lock is
  // released with the object.
  [[nodiscard]] static Result<DeviceRegistry> open(const std::filesystem::path& dir, bool create);

  // The record of that AK name, nullopt when none. StoreCorrupt for an unreadable record.
  [[nodiscard]] Result<std::optional<DeviceRecord>> find(std::span<const uint8_t> ak_name) const;
  // Every record, in file name order.
  [[nodiscard]] Result<std::vector<DeviceRecord>> list() const;
  // Writes (replaces) the record atomically, 0600.
  [[nodiscard]] Status store(const DeviceRecord& record) const;

  DeviceRegistry(DeviceRegistry&& other) noexcept;
  DeviceRegistry& operator=(DeviceRegistry&&) = delete;
  DeviceRegistry(const DeviceRegistry&) = delete;
  ~DeviceRegistry();

 private:
  DeviceRegistry(std::filesystem::path devices, int lock_fd) : devices_(std::move(devices)), lock_fd_(lock_fd) {}
  std::filesystem::path path_of(std::span<const uint8_t> ak_name) const;
  std::filesystem::path devices_;
  int lock_fd_ = -1;
};

// The record's JSON form ({"format":"mcim-operator-device-1", ...}), strict like the wire formats.
std::string to_json(const DeviceRecord& record);
[[nodiscard]] Result<DeviceRecord> device_record_from_json(std::string_view text);

}  // namespace mcimd::op
