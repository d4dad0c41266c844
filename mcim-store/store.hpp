#pragma once
// Profiles on disk, authenticated and rollback-protected. Layout under the store root (default
// /var/lib/mcimd), directories 0700 and files 0600, all owned by the daemon's user:
//   store.json             {"format": 3, "state": {...}, "mac": B64}: generation, the TPM boot
//                          counts at the last commit, the pinned SRK public, the next profile
//                          index, the active profile, every profile's metadata (rules, origin)
//                          and SQN array, the attestation key, the last package counter and the
//                          recent installs; each TPM blob by the SHA-256 of its content. Format 2
//                          (no rules, origin or provisioning state) is read and written back as 3.
//                          mac = HMAC-SHA-256 under the store key (Anchor::mac) over
//                          "mcimd-store-v2\0" ‖ the state's canonical JSON text.
//   objects/<sha256 hex>   write-once TPM blobs (marshaled TPM2B_PUBLIC / TPM2B_PRIVATE), named
//                          by the SHA-256 of their content; unreferenced ones are removed.
// Other names under the root (the daemon keeps keys/ and policies/ there) are not the store's:
// it never reads, changes or removes them.
//
// One commit: new blobs into objects/, then store.json (its atomic rename is the commit point),
// then the anti-rollback counter is incremented to the new generation. A crash at any point
// leaves the old state or the new one, never a mix; a commit whose increment did not happen is
// completed by the next open or commit.
//
// Not thread-safe: one owner (the daemon's TPM worker) calls everything.
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aka/sqn.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::store {

// The TPM's resetCount and restartCount (TPM 2.0 Part 1 §36.6, as TPM2_ReadClock reports them):
// they change with every TPM Reset or Restart, which is when an orderly NV counter may have
// moved forward on its own.
struct BootCounts {
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool operator==(const BootCounts&) const = default;
};

// What the TPM gives the store, behind an interface so unit tests need no TPM: an NV counter
// only mcimd can advance, read in sessions that authenticate the TPM's answer; the TPM's boot
// counts; and a MAC keyed by a key that lives in the TPM (usable only in the approved platform
// state). Must outlive the Store.
class Anchor {
 public:
  virtual ~Anchor() = default;
  [[nodiscard]] virtual Result<uint64_t> counter() = 0;
  [[nodiscard]] virtual Result<uint64_t> increment() = 0;  // returns the new value
  [[nodiscard]] virtual Result<BootCounts> boot_counts() = 0;
  // HMAC-SHA-256 (32 bytes) of data under the store key.
  [[nodiscard]] virtual Result<Bytes> mac(std::span<const uint8_t> data) = 0;
};

struct StoreOptions {
  // MAX_ORDERLY_COUNT + 1 of the TPM's orderly counters (TPM 2.0 Part 1, NV indices with
  // TPMA_NV_ORDERLY; 256 in the reference implementation and libtpms). After an unclean shutdown
  // the TPM brings such a counter back with its low bits set to ones, at most this much ahead of
  // the last value it reported. A store behind its counter is accepted once (and re-anchored) only
  // when the gap is at most this, the counter ends in all ones (value % window == window - 1),
  // and the TPM's boot counts changed since the store's last commit; any other gap is a rollback.
  uint64_t counter_window = 256;
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
  bool operator==(const Blob&) const = default;
};

// The profile's origin when an operator's MCIM package installed it (remote provisioning).
struct PackageOrigin {
  std::string package_id;  // [A-Za-z0-9._-]{1,64}
  uint64_t counter = 0;    // the package's anti-replay counter
  Bytes package_sha256;    // SHA-256 of the signed package as received, 32 bytes
  bool operator==(const PackageOrigin&) const = default;
};

// What the operator allows for the profile (from its package; factory profiles allow all).
struct ProfileRules {
  bool disable_allowed = true;
  bool delete_allowed = true;
  bool fallback_allowed = true;               // switching to the bootstrap profile
  std::optional<uint64_t> locked_until;       // subsidy lock, seconds since the epoch (UTC)
  bool operator==(const ProfileRules&) const = default;
};

// A package this store installed: what a repeated install of the same package answers from
// (the agent resuming after a crash), and the per-device counter the next package must exceed.
struct InstalledPackage {
  std::string package_id;
  Bytes package_sha256;
  uint64_t counter = 0;
  std::string profile_id;
  bool operator==(const InstalledPackage&) const = default;
};
// The store keeps the most recent installs only.
inline constexpr std::size_t kMaxInstalledPackages = 32;

// The profile's deletion counter (protocol::DeletionBinding): its objects' policy ends in
// PolicyNV(counter at nv_index == value); deleting the profile advances the counter.
struct DeletionBinding {
  uint32_t nv_index = 0;  // 0x01xxxxxx
  uint64_t value = 0;
  bool operator==(const DeletionBinding&) const = default;
};

// A profile this store deleted, kept so its receipt can be made again (the last
// kMaxDeletionRecords): what the receipt states.
struct DeletionRecord {
  std::string iccid;
  std::string operator_id;
  uint32_t profile = 0;    // its index
  std::string reason;      // "change-of-subscription" | "command" | "local"
  uint32_t nv_index = 0;   // its deletion counter, and the value it was advanced to (0, 0 without one)
  uint64_t nv_value = 0;
  bool operator==(const DeletionRecord&) const = default;
};
inline constexpr std::size_t kMaxDeletionRecords = 16;

// Credentials a re-key replaced (what the K and OPc blobs were under), kept until the new ones
// have authenticated once, so that new credentials that fail roll back to them.
struct PreviousCredentials {
  std::optional<DeletionBinding> deletion;
  std::string algorithm = "milenage";
  KeyProtection key_protection = KeyProtection::TpmAes;
  bool operator==(const PreviousCredentials&) const = default;
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
  // TPM name (nameAlg ‖ digest, 34 bytes for SHA-256) of the policy authority key whose
  // PolicyAuthorize the K and OPc objects' authPolicy names: 1–66 bytes.
  Bytes authority;
  ProfileRules rules;
  std::optional<PackageOrigin> origin;  // nullopt for a factory profile
  // Format 4 on (absent in older stores):
  std::optional<DeletionBinding> deletion;  // nullopt: objects bound to the authority only
  // Change of subscription: the profile (id) this one replaces, deleted once this one has
  // proved itself (a successful AKA or a confirmation); nullopt otherwise.
  std::optional<std::string> replaces;
  // The last counter of an operator command or release accepted for this profile: the next must
  // be above it.
  uint64_t command_counter = 0;
  // DER SubjectPublicKeyInfo of the subscriber's key (P-256), whose releases the rules may accept.
  std::optional<Bytes> subscriber_key;
  // Set between a re-key and the new credentials' first successful authentication.
  std::optional<PreviousCredentials> previous;
};

struct Profile {
  ProfileMetadata meta;
  Blob k;     // TPM AES-128 key object (or sealed object) holding K
  Blob opc;   // TPM sealed object holding OPc
  // The blobs of meta.previous, when set.
  std::optional<Blob> previous_k, previous_opc;
};

// New credentials for an installed profile (a re-key): what replaces K, OPc and their settings.
struct NewCredentials {
  Blob k, opc;
  std::optional<DeletionBinding> deletion;
  std::string algorithm = "milenage";
  KeyProtection key_protection = KeyProtection::TpmAes;
};

// The attestation key the daemon made under the SRK, and the EK type an operator enrolled it with.
struct AttestationRecord {
  Blob ak;
  std::optional<std::string> enrolled_ek_type;  // "ecc" | "rsa"; nullopt until enrolled
  bool operator==(const AttestationRecord&) const = default;
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

// How open() found the counter when it used options.counter_window: the store's generation, the
// counter's value, and the TPM's boot counts then and now. Library code logs at debug only, so
// the daemon reads this and logs the event for the operator.
struct CounterJump {
  uint64_t generation = 0;
  uint64_t counter = 0;
  BootCounts recorded;
  BootCounts current;
};

class Store {
 public:
  // Opens the store at root, creating it when there is none. Checks, in order, before anything
  // on disk is changed:
  //  - root and objects/ are directories owned by this process's effective uid (StoreCorrupt
  //    naming the owner otherwise); group/other access is taken away;
  //  - store.json: size, format 3 or 2 (another format → Unsupported naming it), JSON shape and every
  //    field (StoreCorrupt naming the field);
  //  - the MAC (Anchor::mac) over the state → StoreTampered when it does not verify (a missing
  //    or malformed "mac" field included);
  //  - every object the state references exists and hashes to its name → StoreTampered;
  //  - the counter c against the generation g: c == g fine; c + 1 == g an interrupted commit,
  //    completed by one increment; c > g by at most options.counter_window, c ending in all ones
  //    and the TPM's boot counts differing from the ones the state recorded: an orderly counter
  //    that moved on after an unclean TPM shutdown, accepted and re-anchored at once (one commit
  //    at c + 1); any other c > g → RollbackDetected; c + 1 < g → StoreCorrupt.
  // Then it removes temporary files of interrupted writes and objects no state references.
  // No store.json: a new empty store is created at the counter's value — unless objects/ holds
  // files, which is refused (StoreCorrupt: store.json was lost; nothing is overwritten).
  [[nodiscard]] static Result<Store> open(const std::filesystem::path& root, Anchor& anchor,
                                          const StoreOptions& options = {});

  // The SRK public pinned in store.json at root, read WITHOUT any check (no MAC, no counter):
  // a hint that lets a daemon tell "another TPM" from "an old store" before it can unlock the
  // store key. nullopt when there is no store yet or nothing is pinned; StoreCorrupt when
  // store.json does not parse.
  [[nodiscard]] static Result<std::optional<Bytes>> pinned_srk_at(const std::filesystem::path& root);
  // The attestation key store.json names, read the same way WITHOUT the MAC or counter checks
  // (its objects are hashed against their names): for a daemon whose store is locked, so that a
  // changed platform can still prove what changed. That is safe because the TPM checks the key
  // blob's integrity when it loads it and the operator checks the key is the one it enrolled.
  // nullopt when there is no store or no key; StoreCorrupt / StoreTampered as for open().
  [[nodiscard]] static Result<std::optional<AttestationRecord>> attestation_at(const std::filesystem::path& root);

  uint64_t generation() const;
  // Set when this Store's open() accepted a counter ahead of the store within the window (and
  // re-anchored); nullopt otherwise.
  const std::optional<CounterJump>& opened_after_counter_jump() const;
  const std::optional<Bytes>& pinned_srk() const;
  std::vector<ProfileMetadata> profiles() const;  // ordered by index
  // Metadata and SQN state from memory, blobs from objects/ (re-hashed: StoreTampered when a
  // file changed since open). NotFound for an unknown id.
  [[nodiscard]] Result<Profile> profile(const std::string& id) const;
  std::optional<std::string> active() const;
  [[nodiscard]] Result<aka::SqnArray> sqn_array(const std::string& id) const;
  [[nodiscard]] Result<std::optional<AttestationRecord>> attestation() const;  // blobs re-hashed as above
  // The highest package counter accepted (0 before the first package), and the recent installs,
  // oldest first.
  uint64_t last_package_counter() const;
  std::vector<InstalledPackage> installed_packages() const;
  std::vector<DeletionRecord> deletions() const;  // oldest first

  // Allocates the next index/id (not persisted until a transaction adds it). Indices are never
  // reused, so a D-Bus object path always names the same profile.
  ProfileMetadata new_metadata() const;

  // Several record changes, one commit, one counter increment. Changes are staged in memory;
  // nothing reaches the disk before commit(). Each staging call checks its own arguments at
  // once (the errors below); commit() checks the invariants of the whole new state:
  //  - active, when set, names an existing, enabled profile (InvalidState otherwise);
  //  - ICCIDs unique, ids match indices.
  // A Transaction must not outlive its Store; only one may be open at a time (InvalidState).
  class Transaction {
   public:
    // InvalidArgument when the metadata is invalid, its id is not "p<index>", its index is below
    // new_metadata()'s, a blob is empty or oversized, or the array's parameters differ from
    // meta.sqn; AlreadyExists when the id or the ICCID is installed (or staged).
    [[nodiscard]] Status add_profile(const Profile& profile, const aka::SqnArray& sqns);
    [[nodiscard]] Status set_state(const std::string& id, ProfileState state);  // NotFound
    [[nodiscard]] Status set_active(std::optional<std::string> id);            // NotFound
    [[nodiscard]] Status remove_profile(const std::string& id);  // NotFound; clears active if it was
    // InvalidArgument when the array's parameters differ from the profile's.
    [[nodiscard]] Status set_sqn_array(const std::string& id, const aka::SqnArray& sqns);
    // NotFound; InvalidArgument when `replaces` names the profile itself or no staged profile.
    [[nodiscard]] Status set_replaces(const std::string& id, std::optional<std::string> replaces);
    // Replayed when counter is not above the profile's command_counter.
    [[nodiscard]] Status set_command_counter(const std::string& id, uint64_t counter);
    // A re-key: the profile's credentials become its previous ones (kept, with their blobs) and
    // `next` the current ones. InvalidState while previous credentials are kept already.
    [[nodiscard]] Status rekey(const std::string& id, const NewCredentials& next);
    // The new credentials proved themselves: the previous ones go. InvalidState when there are none.
    [[nodiscard]] Status drop_previous(const std::string& id);
    // The new credentials failed: the previous ones become current again. InvalidState when none.
    [[nodiscard]] Status roll_back(const std::string& id);
    // Keeps what a deletion receipt states; the oldest beyond kMaxDeletionRecords is dropped.
    [[nodiscard]] Status record_deletion(const DeletionRecord& record);
    [[nodiscard]] Status pin_srk(const Bytes& srk_public);  // InvalidArgument when empty/oversized
    [[nodiscard]] Status set_attestation(const AttestationRecord& record);
    // Records an installed package: its counter becomes the last accepted. Replayed when the
    // counter is not above the last one; InvalidArgument for a bad id or digest; NotFound when
    // the profile is not in the transaction's state. The oldest record beyond
    // kMaxInstalledPackages is dropped.
    [[nodiscard]] Status record_package(const InstalledPackage& package);
    // Writes the change (see the commit protocol above). A transaction with no change writes
    // nothing and does not move the counter. Before the commit point any failure leaves the store
    // as it was, in memory and on disk; after it (the increment failed) the change stays and the
    // next commit or open completes it. Counter checks as in open(): c must equal generation()
    // (or be one below after a failed increment) → else RollbackDetected / StoreCorrupt.
    // commit() ends the transaction whatever its outcome; later calls on it are InvalidState.
    [[nodiscard]] Status commit();

    Transaction(Transaction&&) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();  // an uncommitted transaction is dropped

   private:
    friend class Store;
    struct Impl;
    explicit Transaction(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  [[nodiscard]] Result<Transaction> begin();

  // One-change conveniences: begin(), the change, commit().
  [[nodiscard]] Status add_profile(const Profile& profile, const aka::SqnArray& sqns);
  [[nodiscard]] Status set_state(const std::string& id, ProfileState state);
  [[nodiscard]] Status set_active(std::optional<std::string> id);
  [[nodiscard]] Status remove_profile(const std::string& id);
  [[nodiscard]] Status save_sqn_array(const std::string& id, const aka::SqnArray& sqns);
  [[nodiscard]] Status pin_srk(const Bytes& srk_public);
  [[nodiscard]] Status set_attestation(const AttestationRecord& record);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

 private:
  Store();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcimd::store
