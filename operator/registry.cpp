// Opening the registry: the connection string, the connection pool, and the versioned schema.
#include "operator/registry.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include "common/file.hpp"
#include "operator/registry_impl.hpp"

namespace mcimd::op {

namespace {

constexpr std::string_view kStateDirDatabase = "registry.db";
// nameAlg (2 bytes) and at most a SHA-512 digest: TPM 2.0 Part 1 §16.
constexpr std::size_t kMaxAkNameSize = 2 + 64;
constexpr std::size_t kRandomIdBytes = 16;

// The schema, one statement at a time. Types are the ones SQLite and PostgreSQL share, but for
// bytes: "{blob}" is BLOB in SQLite and BYTEA in PostgreSQL (the dialect shim, blob_type()).
// Times are seconds since the Unix epoch; flags are 0 or 1. A version adds a list here and the
// upgrade from the one before; a database is never written by a build that does not know its
// version.
constexpr std::string_view kSchemaV1[] = {
    R"(CREATE TABLE schema_version (version BIGINT NOT NULL))",
    // Enrolment (DPF/RO) and validation (PVA). device: the AK name in lower-case hex. revision:
    // the record's version, for store()'s compare-and-set. package_counter: the last counter
    // handed out (next_package_counter).
    R"(CREATE TABLE devices (
         device TEXT NOT NULL PRIMARY KEY,
         ak_public {blob} NOT NULL,
         ek_public {blob} NOT NULL,
         ek_certificate {blob},
         enrolled INTEGER NOT NULL CHECK (enrolled IN (0, 1)),
         uncertified_ek INTEGER NOT NULL CHECK (uncertified_ek IN (0, 1)),
         pending_secret_sha256 {blob},
         last_clock BIGINT,
         last_reset_count BIGINT,
         last_restart_count BIGINT,
         last_safe INTEGER CHECK (last_safe IN (0, 1)),
         package_counter BIGINT NOT NULL DEFAULT 0 CHECK (package_counter >= 0),
         revision BIGINT NOT NULL CHECK (revision > 0)))",
    R"(CREATE TABLE subscriptions (
         id TEXT NOT NULL PRIMARY KEY,
         operator_id TEXT NOT NULL,
         iccid TEXT NOT NULL UNIQUE,
         imsi TEXT NOT NULL UNIQUE,
         created BIGINT NOT NULL))",
    // A subscription belongs to one device at a time: the subscription is the key.
    R"(CREATE TABLE device_subscriptions (
         subscription TEXT NOT NULL PRIMARY KEY REFERENCES subscriptions (id),
         device TEXT NOT NULL REFERENCES devices (device),
         linked BIGINT NOT NULL))",
    R"(CREATE INDEX device_subscriptions_device ON device_subscriptions (device, linked))",
    // taken: when the session was consumed; NULL while it is outstanding.
    R"(CREATE TABLE provisioning_sessions (
         id TEXT NOT NULL PRIMARY KEY,
         device TEXT NOT NULL REFERENCES devices (device),
         subscription TEXT REFERENCES subscriptions (id),
         nonce {blob} NOT NULL,
         created BIGINT NOT NULL,
         expires BIGINT NOT NULL,
         taken BIGINT))",
    R"(CREATE INDEX provisioning_sessions_expires ON provisioning_sessions (expires))",
    // One row per package issued (SHO), with its install receipt or failure. UNIQUE (device,
    // counter): never two packages with one counter for a device, whatever the application does.
    R"(CREATE TABLE packages (
         package_id TEXT NOT NULL PRIMARY KEY,
         device TEXT NOT NULL REFERENCES devices (device),
         counter BIGINT NOT NULL CHECK (counter > 0),
         iccid TEXT NOT NULL,
         imsi TEXT NOT NULL,
         package_sha256 {blob} NOT NULL,
         issued BIGINT NOT NULL,
         expires BIGINT NOT NULL,
         state TEXT NOT NULL CHECK (state IN ('issued', 'installed', 'failed')),
         receipt_sha256 {blob},
         receipt_clock BIGINT,
         receipt_reset_count BIGINT,
         receipt_restart_count BIGINT,
         receipt_safe INTEGER CHECK (receipt_safe IN (0, 1)),
         received BIGINT,
         failure TEXT,
         failed BIGINT,
         UNIQUE (device, counter)))",
    R"(CREATE TABLE batch_items (
         job TEXT NOT NULL,
         item TEXT NOT NULL,
         status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
         result TEXT NOT NULL,
         updated BIGINT NOT NULL,
         PRIMARY KEY (job, item)))",
    R"(CREATE INDEX batch_items_status ON batch_items (job, status, item))",
};
constexpr int kSchemaVersion = 1;

// --- the dialect shim: the only places the two databases need different text -----------------

std::string_view blob_type(sql::Dialect d) { return d == sql::Dialect::Sqlite ? "BLOB" : "BYTEA"; }

std::string in_dialect(std::string_view statement, sql::Dialect d) {
  constexpr std::string_view kBlob = "{blob}";
  std::string out(statement);
  for (auto at = out.find(kBlob); at != std::string::npos; at = out.find(kBlob, at)) out.replace(at, kBlob.size(), blob_type(d));
  return out;
}

std::string_view schema_version_exists_sql(sql::Dialect d) {
  return d == sql::Dialect::Sqlite
             ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
             : "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
               "AND tablename = 'schema_version'";
}

// Two processes opening an empty PostgreSQL database at once must not both create the schema.
// SQLite needs nothing: BEGIN IMMEDIATE already serialises writers.
Status lock_schema(sql::Connection& c) {
  if (c.dialect() != sql::Dialect::Postgresql) return {};
  // Any constant: the key of a transaction-scoped advisory lock ("mcim" in ASCII).
  MCIMD_CHECK(c.run("SELECT 1 FROM pg_advisory_xact_lock(1835231597)"));
  return {};
}

// --- schema version -------------------------------------------------------------------------------

// The version recorded in the database; nullopt for a database without the schema.
Result<std::optional<int64_t>> read_schema_version(sql::Connection& c) {
  auto exists = MCIMD_TRY(c.run(schema_version_exists_sql(c.dialect())));
  if (exists.size() != 1 || MCIMD_TRY(exists[0].integer(0)) == 0) return std::optional<int64_t>();
  auto rows = MCIMD_TRY(c.run("SELECT version FROM schema_version"));
  if (rows.size() != 1)
    return fail(Code::StoreCorrupt, "the registry's schema_version table has " + std::to_string(rows.size()) +
                                        " rows instead of one");
  return std::optional<int64_t>(MCIMD_TRY(rows[0].integer(0)));
}

Status check_schema_version(int64_t version, const std::string& where) {
  if (version == kSchemaVersion) return {};
  if (version > kSchemaVersion)
    return fail(Code::Unsupported, where + " has registry schema version " + std::to_string(version) +
                                       ", newer than this mcim-operator knows (" + std::to_string(kSchemaVersion) +
                                       "); use a newer mcim-operator");
  return fail(Code::StoreCorrupt, where + " has registry schema version " + std::to_string(version) +
                                      ", which no mcim-operator wrote");
}

Status create_schema(sql::Connection& c) {
  for (auto statement : kSchemaV1) MCIMD_CHECK(c.run(in_dialect(statement, c.dialect())));
  MCIMD_CHECK(c.run("INSERT INTO schema_version (version) VALUES ($1)", {int64_t{kSchemaVersion}}));
  return {};
}

Status ensure_schema(sql::Connection& c, const std::string& where) {
  if (auto version = MCIMD_TRY(read_schema_version(c))) return check_schema_version(*version, where);
  MCIMD_CHECK(c.begin(sql::Access::Write));
  auto created = [&]() -> Status {
    MCIMD_CHECK(lock_schema(c));
    // Another process may have created it while this one waited for the lock.
    if (auto version = MCIMD_TRY(read_schema_version(c))) return check_schema_version(*version, where);
    return create_schema(c);
  }();
  if (!created) {
    (void)c.rollback();
    return created;
  }
  return c.commit();
}

}  // namespace

// --- pool -------------------------------------------------------------------------------------------

Result<std::unique_ptr<sql::Connection>> Registry::Impl::connect() const {
  if (target.dialect == sql::Dialect::Postgresql) return sql::open_postgresql(target);
  return sql::open_sqlite(target, sql::SqliteOptions{.create = options.create,
                                                    .busy_timeout_ms = static_cast<int>(options.busy_timeout.count())});
}

Result<std::unique_ptr<sql::Connection>> Registry::Impl::acquire() {
  std::unique_lock lock(mutex);
  returned.wait(lock, [&] { return !idle.empty() || open < options.max_connections; });
  if (!idle.empty()) {
    auto connection = std::move(idle.back());
    idle.pop_back();
    return connection;
  }
  ++open;
  lock.unlock();
  auto connection = connect();
  if (!connection) {
    lock.lock();
    --open;
    lock.unlock();
    returned.notify_one();
  }
  return connection;
}

void Registry::Impl::release(std::unique_ptr<sql::Connection> connection) {
  std::unique_ptr<sql::Connection> closing;
  {
    std::lock_guard lock(mutex);
    if (connection && !connection->broken()) {
      idle.push_back(std::move(connection));
    } else {
      closing = std::move(connection);
      --open;
    }
  }
  returned.notify_one();
}

// --- opening -----------------------------------------------------------------------------------------

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;
Registry::~Registry() = default;

int Registry::schema_version() { return kSchemaVersion; }
const std::string& Registry::description() const { return impl_->target.description; }

Result<Registry> Registry::open(std::string_view connection, const RegistryOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->target = MCIMD_TRY(sql::parse_target(connection));
  impl->options = options;
  impl->options.max_connections = std::max<std::size_t>(options.max_connections, 1);
  // The first connection checks the schema (creating it in an empty database) and is pooled.
  auto first = MCIMD_TRY(impl->connect());
  MCIMD_CHECK(ensure_schema(*first, impl->target.description));
  impl->open = 1;
  impl->idle.push_back(std::move(first));
  return Registry(std::move(impl));
}

std::string Registry::state_dir_connection(const std::filesystem::path& dir) {
  return "sqlite:" + (dir / kStateDirDatabase).string();
}

// --- shared checks -----------------------------------------------------------------------------------

std::string device_id(std::span<const uint8_t> ak_name) { return to_hex(ak_name); }

namespace registry {

Result<std::string> device_key(std::span<const uint8_t> ak_name) {
  if (ak_name.empty() || ak_name.size() > kMaxAkNameSize)
    return fail(Code::InvalidArgument, "an AK name is a nameAlg and a digest, not " + std::to_string(ak_name.size()) +
                                           " bytes");
  return device_id(ak_name);
}

Result<Bytes> ak_name_from_key(const std::string& key) {
  auto name = from_hex(key, "device id");
  if (!name || name->empty() || key != to_hex(*name))
    return fail(Code::StoreCorrupt, "registry device id \"" + key.substr(0, 80) + "\" is not lower-case hex");
  return std::move(*name);
}

Status require_device(sql::Connection& c, const std::string& key) {
  auto rows = MCIMD_TRY(c.run("SELECT 1 FROM devices WHERE device = $1", {key}));
  if (rows.empty()) return fail(Code::NotFound, "no device " + key + " is registered");
  return {};
}

Status check_id(std::string_view id, std::string_view what) {
  auto allowed = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  };
  if (id.empty() || id.size() > kMaxIdSize || !std::all_of(id.begin(), id.end(), allowed))
    return fail(Code::InvalidArgument, std::string(what) + " must be 1 to " + std::to_string(kMaxIdSize) +
                                           " of A-Z a-z 0-9 . _ -");
  return {};
}

Status check_digits(std::string_view s, std::size_t min, std::size_t max, std::string_view what) {
  if (s.size() < min || s.size() > max || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail(Code::InvalidArgument,
                std::string(what) + " must be " + std::to_string(min) + " to " + std::to_string(max) + " digits");
  return {};
}

Status check_iccid(std::string_view iccid) { return check_digits(iccid, 18, 20, "an ICCID"); }
Status check_imsi(std::string_view imsi) { return check_digits(imsi, 6, 15, "an IMSI"); }

Status check_line(std::string_view s, std::size_t max, std::string_view what, bool allow_empty) {
  if ((!allow_empty && s.empty()) || s.size() > max)
    return fail(Code::InvalidArgument, std::string(what) + " must be " + (allow_empty ? "at most " : "1 to ") +
                                           std::to_string(max) + " bytes");
  if (!sql::valid_text(s) || s.find_first_of("\r\n") != std::string_view::npos)
    return fail(Code::InvalidArgument, std::string(what) + " must be one line of UTF-8 text");
  return {};
}

Result<std::string> random_id() {
  std::array<uint8_t, kRandomIdBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    return fail(Code::Internal, "RAND_bytes failed to draw an id");
  return base64url_encode(bytes);
}

Result<std::optional<attestation::ClockInfo>> clock_from_row(const sql::Row& row, std::size_t first) {
  const auto clock = MCIMD_TRY(row.optional_integer(first));
  const auto reset = MCIMD_TRY(row.optional_integer(first + 1));
  const auto restart = MCIMD_TRY(row.optional_integer(first + 2));
  const auto safe = MCIMD_TRY(row.optional_integer(first + 3));
  const int set = int(clock.has_value()) + int(reset.has_value()) + int(restart.has_value()) + int(safe.has_value());
  if (set == 0) return std::optional<attestation::ClockInfo>();
  constexpr int64_t kUint32Max = 0xffffffff;
  if (set != 4 || *reset < 0 || *reset > kUint32Max || *restart < 0 || *restart > kUint32Max || (*safe != 0 && *safe != 1))
    return fail(Code::StoreCorrupt, "registry clock columns are incomplete or out of range");
  attestation::ClockInfo info;
  info.clock = static_cast<uint64_t>(*clock);
  info.reset_count = static_cast<uint32_t>(*reset);
  info.restart_count = static_cast<uint32_t>(*restart);
  info.safe = *safe == 1;
  return std::optional<attestation::ClockInfo>(info);
}

void append_clock(std::vector<sql::Value>& params, const std::optional<attestation::ClockInfo>& clock) {
  if (!clock) {
    params.insert(params.end(), 4, sql::null());
    return;
  }
  params.emplace_back(static_cast<int64_t>(clock->clock));
  params.emplace_back(static_cast<int64_t>(clock->reset_count));
  params.emplace_back(static_cast<int64_t>(clock->restart_count));
  params.emplace_back(int64_t{clock->safe ? 1 : 0});
}

}  // namespace registry
}  // namespace mcimd::op
