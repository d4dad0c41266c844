#pragma once
// Profiles on disk. Layout under the store root (default /var/lib/mcimd), all 0700/0600:
//   store.json                 generation, active profile, pinned SRK public, per-profile SQN generations
//   profiles/<id>/profile.json metadata (no secrets)
//   profiles/<id>/k.pub|k.priv       TPM AES key blob for K (marshaled TPM2B_PUBLIC/TPM2B_PRIVATE)
//   profiles/<id>/opc.pub|opc.priv   TPM sealed blob for OPc
//   profiles/<id>/sqn.json     SQN array + the generation it was written at
// Every write is atomic (common/file.hpp). Anti-rollback: each committed change takes
// generation g = counter + 1, writes its files stamped g, then increments the TPM NV counter
// to g; opening a store whose generation is below the counter is RollbackDetected.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aka/sqn.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::store {

// The TPM NV monotonic counter, behind an interface so unit tests need no TPM.
class GenerationCounter {
 public:
  virtual ~GenerationCounter() = default;
  [[nodiscard]] virtual Result<uint64_t> read() = 0;
  [[nodiscard]] virtual Result<uint64_t> increment() = 0;  // returns the new value
};

enum class ProfileState { Enabled, Disabled };
enum class ProfileClass { Operational, Bootstrap };
std::string_view to_string(ProfileState s);
std::string_view to_string(ProfileClass c);

struct Blob {  // marshaled TPM2B_PUBLIC / TPM2B_PRIVATE
  Bytes public_area;
  Bytes private_area;
};

struct ProfileMetadata {
  std::string id;            // stable, filesystem-safe: "p<index>"
  uint32_t index = 0;        // D-Bus object path /org/mcimd/Tre1/Profile/<index>
  std::string iccid;         // 18–20 digits (ITU-T E.118)
  std::string imsi;          // 6–15 digits
  std::string operator_id;   // MCC+MNC by default
  ProfileState state = ProfileState::Disabled;
  ProfileClass profile_class = ProfileClass::Operational;
  std::string algorithm = "milenage";
  std::array<uint8_t, 2> amf{0x80, 0x00};  // AMF used by default for network-side tools
  aka::SqnParameters sqn;
  std::string pcr_policy;    // e.g. "sha256:7"
};

struct Profile {
  ProfileMetadata meta;
  Blob k;     // TPM AES-128 key object holding K
  Blob opc;   // TPM sealed object holding OPc
};

// What a factory YAML file says (parsed, validated; K and OP/OPc are secrets).
struct FactoryProfile {
  std::string iccid, imsi, operator_id;
  ProfileClass profile_class = ProfileClass::Operational;
  SecureBytes k;                     // 16 bytes
  std::optional<SecureBytes> op;     // exactly one of op / opc
  std::optional<SecureBytes> opc;
  std::array<uint8_t, 2> amf{0x80, 0x00};
  aka::SqnParameters sqn;
  uint64_t initial_sqn = 0;          // the first SQN the network will send must exceed... see seed()
};
// Parses a factory profile; unknown keys or bad values → InvalidArgument naming key and line.
[[nodiscard]] Result<FactoryProfile> parse_factory_profile(std::string_view yaml);

class Store {
 public:
  // Opens (creating when absent) the store at root, checks it against the counter:
  // generation < counter → RollbackDetected; files inconsistent → StoreCorrupt; an interrupted
  // commit (generation == counter + 1) is completed.
  [[nodiscard]] static Result<Store> open(const std::filesystem::path& root, GenerationCounter& counter);

  uint64_t generation() const;
  const std::optional<Bytes>& pinned_srk() const;
  [[nodiscard]] Status pin_srk(const Bytes& srk_public);

  std::vector<ProfileMetadata> profiles() const;
  [[nodiscard]] Result<Profile> profile(const std::string& id) const;
  std::optional<std::string> active() const;

  // Allocates the next index/id (not persisted until add_profile).
  ProfileMetadata new_metadata() const;
  // Adds a profile with its initial SQN array. AlreadyExists when the ICCID is installed.
  [[nodiscard]] Status add_profile(const Profile& profile, const aka::SqnArray& sqns);
  [[nodiscard]] Status set_state(const std::string& id, ProfileState state);
  [[nodiscard]] Status set_active(std::optional<std::string> id);
  [[nodiscard]] Status remove_profile(const std::string& id);

  [[nodiscard]] Result<aka::SqnArray> sqn_array(const std::string& id) const;
  // Persists a new SQN array (after the MAC verified). Atomic and generation-bound.
  [[nodiscard]] Status save_sqn_array(const std::string& id, const aka::SqnArray& sqns);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

 private:
  Store();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcimd::store
