#pragma once
// Profiles on disk. Layout under the store root (default /var/lib/mcimd), all 0700/0600:
//   store.json                 generation, active profile, pinned SRK public, next index, the
//                              profile list with each profile.json's and sqn.json's generation
//   profiles/<id>/profile.json metadata (no secrets)
//   profiles/<id>/k.pub|k.priv       TPM AES key blob for K (marshaled TPM2B_PUBLIC/TPM2B_PRIVATE)
//   profiles/<id>/opc.pub|opc.priv   TPM sealed blob for OPc
//   profiles/<id>/sqn.json     SQN array + the generation it was written at
// Every write is atomic (common/file.hpp). Anti-rollback: each committed change takes
// generation g = counter + 1, writes the per-profile files it changes stamped g, then store.json
// stamped g (its rename is the commit point), then increments the TPM NV counter to g; opening a
// store whose generation is below the counter is RollbackDetected. store.json records the
// generation of every profile.json and sqn.json, so restoring one old file is detected as well.
//
// Not thread-safe: one owner (the daemon's TPM worker) calls everything.
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
std::string_view to_string(ProfileState s);   // "enabled" | "disabled"
std::string_view to_string(ProfileClass c);   // "operational" | "bootstrap"
std::optional<ProfileState> profile_state_from_string(std::string_view s);
std::optional<ProfileClass> profile_class_from_string(std::string_view s);
enum class KeyProtection { TpmAes, Sealed };
std::string_view to_string(KeyProtection k);  // "tpm-aes" | "sealed"
std::optional<KeyProtection> key_protection_from_string(std::string_view s);

struct Blob {  // marshaled TPM2B_PUBLIC / TPM2B_PRIVATE
  Bytes public_area;
  Bytes private_area;
};

struct ProfileMetadata {
  std::string id;            // stable, filesystem-safe: "p<index>" (index in decimal, no leading zeros)
  uint32_t index = 0;        // D-Bus object path /org/mcimd/Tre1/Profile/<index>
  std::string iccid;         // 18–20 digits (ITU-T E.118)
  std::string imsi;          // 6–15 digits
  std::string operator_id;   // MCC+MNC by default; printable ASCII, at most 64 characters
  ProfileState state = ProfileState::Disabled;
  ProfileClass profile_class = ProfileClass::Operational;
  // Where K lives: a TPM AES-128 object whose AES runs in the TPM (TPM2_EncryptDecrypt2), or,
  // for TPMs without that command, a sealed object unsealed into locked memory per use.
  KeyProtection key_protection = KeyProtection::TpmAes;
  std::string algorithm = "milenage";  // lower-case name, [a-z0-9-], at most 32 characters
  std::array<uint8_t, 2> amf{0x80, 0x00};  // AMF used by default for network-side tools
  aka::SqnParameters sqn;
  std::string pcr_policy;    // e.g. "sha256:7"; printable ASCII, at most 256 characters
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
  uint64_t initial_sqn = 0;          // the lowest SQN the profile accepts first (aka::SqnArray::seed)
};
// Parses a factory profile (example: mcim-store/examples/factory-profile.yaml). Keys: iccid
// (18–20 digits), imsi (6–15 digits), operator (default: the first 5 IMSI digits), class
// (operational | bootstrap), k (32 hex), exactly one of op / opc (32 hex), amf (4 hex, default
// 8000), sqn: {initial (12 hex digits, "0x" hex, or a decimal integer < 2^48), ind-bits (1–10),
// delta (1..2^43-1), age-limit (< 2^48, 0 = none), require-amf-separation (true | false)}.
// Unknown or repeated keys and bad values → InvalidArgument naming key and line; documents
// larger than 64 KiB are refused. Error messages never contain K, OP or OPc. yaml-cpp keeps its
// own copies of scalars in ordinary heap memory while parsing; only our copies are SecureBytes.
[[nodiscard]] Result<FactoryProfile> parse_factory_profile(std::string_view yaml);

// Every mutating call is one commit: the store on disk is wholly the old or wholly the new state
// after a crash at any point. Each commit reads the counter first (it must equal generation(),
// or be one below when an earlier increment failed, which is then completed) and increments it
// last. An error after the commit point (the counter increment failed) leaves the change in
// place: in memory and on disk alike. After a failed write the store reloads itself from disk;
// if even that fails, every later mutating call fails until the store is opened again.
class Store {
 public:
  // Opens (creating when absent) the store at root, checks it against the counter (which must
  // outlive the Store): generation < counter → RollbackDetected; a profile.json or sqn.json older
  // than store.json records → RollbackDetected; files unreadable, oversized, malformed or
  // inconsistent → StoreCorrupt naming the file and field; an interrupted commit is completed
  // (store.json at counter + 1: the counter is incremented; a per-profile file written at
  // counter + 1 whose store.json was not: rolled forward, see store.cpp); profile folders that
  // store.json does not list and temporary files of interrupted writes are removed. No file is
  // changed or removed when a check fails.
  [[nodiscard]] static Result<Store> open(const std::filesystem::path& root, GenerationCounter& counter);

  // The SRK public pinned in the store at root, read without the counter checks of open() (so a
  // daemon can tell "another TPM" from "an old store" before it trusts the TPM's counter).
  // nullopt when there is no store yet or nothing is pinned; StoreCorrupt for a bad store.json.
  [[nodiscard]] static Result<std::optional<Bytes>> pinned_srk_at(const std::filesystem::path& root);

  uint64_t generation() const;
  const std::optional<Bytes>& pinned_srk() const;
  // Stores the marshaled SRK public (TPM2B_PUBLIC) in store.json; InvalidArgument when empty.
  [[nodiscard]] Status pin_srk(const Bytes& srk_public);

  std::vector<ProfileMetadata> profiles() const;  // ordered by index
  // Metadata from memory, blobs read from disk. NotFound for an unknown id.
  [[nodiscard]] Result<Profile> profile(const std::string& id) const;
  std::optional<std::string> active() const;

  // Allocates the next index/id (not persisted until add_profile). Indices are never reused,
  // so a D-Bus object path always names the same profile.
  ProfileMetadata new_metadata() const;
  // Adds a profile with its initial SQN array. InvalidArgument when the metadata is invalid, its
  // id is not "p<index>", its index is below new_metadata()'s, a blob is empty or the array's
  // parameters differ from meta.sqn; AlreadyExists when the id or the ICCID is installed.
  [[nodiscard]] Status add_profile(const Profile& profile, const aka::SqnArray& sqns);
  // NotFound for an unknown id; setting the current state again writes nothing.
  [[nodiscard]] Status set_state(const std::string& id, ProfileState state);
  // NotFound for an unknown id; nullopt clears the active profile.
  [[nodiscard]] Status set_active(std::optional<std::string> id);
  // Commits store.json without the profile (clearing active if it was), then removes its folder.
  [[nodiscard]] Status remove_profile(const std::string& id);

  // Reads sqn.json; RollbackDetected when it is older than store.json records.
  [[nodiscard]] Result<aka::SqnArray> sqn_array(const std::string& id) const;
  // Persists a new SQN array (after the MAC verified). Atomic and generation-bound.
  // InvalidArgument when the array's parameters differ from the profile's.
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
