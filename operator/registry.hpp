#pragma once
// The operator's registry (TR 33.812 DPF/RO, PVA and SHO state): enrolled devices, their
// subscriptions, provisioning sessions, package counters, the packages issued and their receipts,
// and the progress of batch jobs. One schema in SQLite (the default: one file, one machine) or in
// PostgreSQL (fleets that outgrow one machine), chosen by a connection string.
//
// Concurrency: a Registry is safe to share between threads. Each call borrows a connection from
// the Registry's own pool (up to RegistryOptions::max_connections, opened on demand) and runs as
// one transaction on it, so calls from different threads run side by side where the database
// allows. Several processes may open the same registry: SQLite in WAL mode lets readers run
// beside one writer and queues writers on the busy timeout; PostgreSQL transactions isolate them.
// Every check-then-change a call makes happens in one statement or one write transaction, so
// what the API promises (a counter handed out once, a session taken once) holds across threads
// and processes alike.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::op {

using Timestamp = std::chrono::sys_seconds;

// ---- devices (enrolment and validation) ---------------------------------------------------------

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
  // bytes, so its hash cannot be inverted and the secret itself is never stored.
  std::optional<Bytes> pending_secret_sha256;
  std::optional<attestation::ClockInfo> last_clock;  // of the last accepted quote
  // The registry's version of the record: 0 for a record not stored yet. store() writes only
  // over the version it was read at, so two operations on one device never lose an update.
  uint64_t revision = 0;
};

// The device id the operator prints and accepts: the AK name in lower-case hex.
std::string device_id(std::span<const uint8_t> ak_name);

// How an uncertified EK shows in enrolment and verification output.
inline constexpr std::string_view kUncertifiedEk =
    "not checked: the EK has no certificate; the operator enrolled it as uncertified (--allow-uncertified-ek)";

// ---- subscriptions --------------------------------------------------------------------------------

// Ids the registry accepts for subscriptions, packages and batch jobs: [A-Za-z0-9._-]{1,64}, the
// protocol's shape for ids that travel to devices.
inline constexpr std::size_t kMaxIdSize = 64;

struct SubscriptionSpec {
  std::optional<std::string> id;  // absent: the registry draws a random one
  std::string operator_id;        // the issuing operator, [A-Za-z0-9._-]{1,64}
  std::string iccid;              // 18–20 digits (ITU-T E.118)
  std::string imsi;               // 6–15 digits (TS 23.003 §2.2)
};

struct Subscription {
  std::string id;
  std::string operator_id;
  std::string iccid;
  std::string imsi;
  Timestamp created;
  bool operator==(const Subscription&) const = default;
};

// ---- provisioning sessions ----------------------------------------------------------------------

inline constexpr std::size_t kSessionNonceSize = 32;

struct SessionSpec {
  Bytes ak_name;                            // the enrolled device the session is for
  std::optional<std::string> subscription;  // the subscription it asks for, if it named one
  Bytes nonce;                              // kSessionNonceSize random bytes, the operator's
  Timestamp expires;
};

struct ProvisioningSession {
  std::string id;
  Bytes ak_name;
  std::optional<std::string> subscription;
  Bytes nonce;
  Timestamp created;
  Timestamp expires;
  bool operator==(const ProvisioningSession&) const = default;
};

// ---- packages -------------------------------------------------------------------------------------

enum class PackageState { Issued, Installed, Failed };
std::string_view package_state_name(PackageState state);

struct PackageSpec {
  std::string package_id;  // [A-Za-z0-9._-]{1,64}, as in the package header
  Bytes ak_name;
  uint64_t counter = 0;    // from next_package_counter for this device
  std::string iccid;
  std::string imsi;
  Bytes package_sha256;    // SHA-256 of the signed package (JWS compact text)
  Timestamp issued;
  Timestamp expires;
};

// What the device's install receipt proved.
struct InstallReceiptInfo {
  attestation::ClockInfo clock;  // of the receipt's quote
  Bytes receipt_sha256;          // SHA-256 of the receipt document as received
  Timestamp received;
  bool operator==(const InstallReceiptInfo&) const = default;
};

struct PackageRecord {
  PackageSpec spec;
  PackageState state = PackageState::Issued;
  std::optional<InstallReceiptInfo> receipt;  // Installed
  std::optional<std::string> failure;         // Failed: the reason given
  std::optional<Timestamp> failed;
};

// ---- batch jobs -------------------------------------------------------------------------------------

enum class BatchStatus { Pending, Running, Done, Failed };
std::string_view batch_status_name(BatchStatus status);

// Batch keys are any one line of text up to kMaxBatchKeySize bytes (a device id is 68 hex digits).
inline constexpr std::size_t kMaxBatchKeySize = 512;
inline constexpr std::size_t kMaxBatchResultSize = 4096;

struct BatchItem {
  std::string job;
  std::string key;     // what the item is about, e.g. a device id
  BatchStatus status = BatchStatus::Pending;
  std::string result;  // one line: what was made, or why it failed
  Timestamp updated;
  bool operator==(const BatchItem&) const = default;
};

struct BatchOutcome {
  std::string job;
  std::string key;
  BatchStatus status = BatchStatus::Done;  // Done or Failed
  std::string result;
  Timestamp now;
};

// ---- the registry -----------------------------------------------------------------------------------

struct RegistryOptions {
  // SQLite: create the database file (0600) and its missing parent directories (0700) if absent;
  // without, an absent file is NotFound. PostgreSQL: the database must exist either way.
  bool create = true;
  // Connections kept open and shared by the calling threads; a call waits for a free one.
  std::size_t max_connections = 8;
  // SQLite: how long a writer waits for another connection's or process's write lock before the
  // call fails with Busy.
  std::chrono::milliseconds busy_timeout{30000};
};

class Registry {
 public:
  // Opens the registry a connection string names:
  //   sqlite:PATH                a SQLite database file (WAL mode)
  //   postgresql://… postgres://…  a libpq connection URI
  // Creates the schema in an empty database. Checks, in order:
  //   the string has one of these forms (InvalidArgument, without echoing it)
  //   the database can be opened or reached (NotFound, IoError with the driver's message, never
  //   with the URI's password)
  //   its schema_version is one this build knows: a newer one is Unsupported by name; a damaged
  //   one StoreCorrupt
  [[nodiscard]] static Result<Registry> open(std::string_view connection, const RegistryOptions& options = {});
  // The registry of a state directory, as mcim-operator's --state names it: sqlite:DIR/registry.db.
  // With `create` the directory is made 0700 if absent; without, an absent directory is NotFound.
  // Device records an earlier mcim-operator kept as DIR/devices/*.json are imported once (records
  // already in the database win) and the folder renamed to devices.imported.
  [[nodiscard]] static Result<Registry> open_state_dir(const std::filesystem::path& dir, bool create);
  // The connection string for a state directory.
  static std::string state_dir_connection(const std::filesystem::path& dir);

  // The schema version this build writes and reads.
  static int schema_version();
  // Where the registry is, without any password: "sqlite:/path" or "postgresql://user@host:port/db".
  const std::string& description() const;

  // -- devices. Every call that names a device by AK name: NotFound when it is not registered.

  // The record of that AK name, nullopt when none. StoreCorrupt for a row that does not decode,
  // or whose AK public area does not hash to its name.
  [[nodiscard]] Result<std::optional<DeviceRecord>> find(std::span<const uint8_t> ak_name) const;
  // Every record, in device id order.
  [[nodiscard]] Result<std::vector<DeviceRecord>> list() const;
  // Writes the record: inserts it when record.revision is 0, else replaces the version read.
  // Busy when the device was stored meanwhile by another call (the caller reads and decides
  // again). On success record.revision is the stored version. InvalidArgument when ak_name is
  // not the AK public area's name.
  [[nodiscard]] Status store(DeviceRecord& record) const;

  // The device's next package counter: 1, 2, 3, … Strictly increasing, never the same value
  // twice, whatever threads or processes ask at once; committed before it is returned, so a
  // counter survives restarts and power cuts. It is also above `accepted`, the last counter the
  // device says it accepted: a device counts the packages of every operator that provisioned it,
  // so a registry that is not the first to provision it skips ahead to the device's count
  // (InvalidArgument for an `accepted` that leaves no counter to hand out).
  [[nodiscard]] Result<uint64_t> next_package_counter(std::span<const uint8_t> ak_name, uint64_t accepted = 0) const;

  // -- subscriptions

  // Checks: the id (if given) and operator id have the id shape, the ICCID 18–20 digits, the
  // IMSI 6–15 digits (InvalidArgument); no subscription has that id, ICCID or IMSI already
  // (AlreadyExists).
  [[nodiscard]] Result<Subscription> create_subscription(const SubscriptionSpec& spec, Timestamp now) const;
  [[nodiscard]] Result<std::optional<Subscription>> find_subscription(std::string_view id) const;
  [[nodiscard]] Result<std::optional<Subscription>> find_subscription_by_iccid(std::string_view iccid) const;
  // Links a subscription to a device. A subscription belongs to one device at a time: linked to
  // another one it is AlreadyExists (unlink it first: a change of subscription); linking it to
  // the same device again changes nothing. NotFound for an unknown device or subscription.
  [[nodiscard]] Status link_subscription(std::span<const uint8_t> ak_name, std::string_view subscription,
                                         Timestamp now) const;
  // NotFound when the subscription is not linked to that device.
  [[nodiscard]] Status unlink_subscription(std::span<const uint8_t> ak_name, std::string_view subscription) const;
  // The device's subscriptions, in the order they were linked.
  [[nodiscard]] Result<std::vector<Subscription>> subscriptions_of(std::span<const uint8_t> ak_name) const;
  // The AK name of the device a subscription is linked to, nullopt when none.
  [[nodiscard]] Result<std::optional<Bytes>> device_of_subscription(std::string_view subscription) const;

  // -- provisioning sessions

  // Records a session and returns its id (22 characters of base64url: 128 random bits).
  // Checks: the nonce is kSessionNonceSize bytes and expires is after now (InvalidArgument); the
  // device and the subscription, if named, exist (NotFound).
  [[nodiscard]] Result<std::string> create_session(const SessionSpec& spec, Timestamp now) const;
  // Consumes a session, exactly once even when several callers race: the first caller before
  // its expiry gets the session; then Replayed for every later take, Expired for a take at or
  // after expires (the session stays unused), NotFound for an id never issued (or purged).
  [[nodiscard]] Result<ProvisioningSession> take_session(std::string_view id, Timestamp now) const;
  // Deletes sessions that expired before `before`, taken or not; how many.
  [[nodiscard]] Result<std::size_t> purge_sessions(Timestamp before) const;

  // -- packages

  // Records an issued package. Checks: the ids and digits have their shapes, package_sha256 is
  // 32 bytes, issued < expires (InvalidArgument); the device exists (NotFound); the counter was
  // handed out by next_package_counter for this device (InvalidArgument); no package has this id,
  // nor this device this counter (AlreadyExists).
  [[nodiscard]] Status record_package(const PackageSpec& spec) const;
  // Records the device's install receipt: Issued → Installed. NotFound for an unknown package,
  // Replayed when it is installed already (a receipt counts once), InvalidState when it failed.
  [[nodiscard]] Status mark_installed(std::string_view package_id, const InstallReceiptInfo& receipt) const;
  // Issued → Failed with a one-line reason. NotFound; InvalidState unless Issued.
  [[nodiscard]] Status mark_failed(std::string_view package_id, std::string_view reason, Timestamp now) const;
  [[nodiscard]] Result<std::optional<PackageRecord>> find_package(std::string_view package_id) const;
  // The device's packages in counter order.
  [[nodiscard]] Result<std::vector<PackageRecord>> packages_of(std::span<const uint8_t> ak_name) const;

  // -- batch jobs: a job is a set of items, each worked on once, so an interrupted run resumes.

  // Adds pending items; keys already in the job keep their state (a resumed run adds them all
  // again). How many were new.
  [[nodiscard]] Result<std::size_t> add_batch_items(std::string_view job, std::span<const std::string> keys,
                                                    Timestamp now) const;
  // Moves one pending item (the first by key) to Running and returns its key; nullopt when none
  // is pending. Concurrent workers never get the same item.
  [[nodiscard]] Result<std::optional<std::string>> claim_batch_item(std::string_view job, Timestamp now) const;
  // Running → Done or Failed with its result line (one line, at most kMaxBatchResultSize bytes).
  // InvalidArgument when the outcome is neither Done nor Failed; NotFound for an unknown item;
  // InvalidState when it is not Running.
  [[nodiscard]] Status finish_batch_item(const BatchOutcome& outcome) const;
  // Running → Pending for every item of the job: after a run died, before the next one starts
  // (while no other process works on the job). How many.
  [[nodiscard]] Result<std::size_t> requeue_batch_items(std::string_view job, Timestamp now) const;
  // The job's items by key.
  [[nodiscard]] Result<std::vector<BatchItem>> batch_items(std::string_view job) const;

  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  struct Impl;

 private:
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A device record's JSON form ({"format":"mcim-operator-device-1", ...}), the per-file format of
// earlier state directories; strict like the wire formats. Used to import them.
std::string to_json(const DeviceRecord& record);
[[nodiscard]] Result<DeviceRecord> device_record_from_json(std::string_view text);

}  // namespace mcimd::op
