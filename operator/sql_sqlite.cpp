// The SQLite driver of the registry (libsqlite3): one database file in WAL mode, so readers never
// wait for the writer and writers queue on a busy timeout, across threads and processes alike.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>

#include "common/c_handle.hpp"
#include "common/file.hpp"
#include "operator/sql.hpp"

namespace mcimd::op::sql {

namespace {

using SqliteDb = CHandle<sqlite3, sqlite3_close_v2>;
using SqliteStatement = CHandle<sqlite3_stmt, sqlite3_finalize>;

// Named codes for SQLite's extended result codes (https://sqlite.org/rescode.html).
tl::unexpected<Error> sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return fail(Code::AlreadyExists, std::move(message));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return fail(Code::NotFound, std::move(message));
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return fail(Code::InvalidArgument, std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return fail(Code::Busy, std::move(message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return fail(Code::StoreCorrupt, std::move(message));
    default:
      return fail(Code::IoError, std::move(message));
  }
}

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(SqliteDb db, std::string where) : db_(std::move(db)), where_(std::move(where)) {}

  using Connection::run;
  Dialect dialect() const override { return Dialect::Sqlite; }
  bool broken() const override { return false; }

  Result<std::vector<Row>> run(std::string_view statement, std::span<const Value> params) override {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), statement.data(), static_cast<int>(statement.size()), &raw, nullptr);
    SqliteStatement stmt(raw);
    if (rc != SQLITE_OK) return sqlite_error(db_.get(), rc, where_);
    if (static_cast<std::size_t>(sqlite3_bind_parameter_count(stmt.get())) != params.size())
      return fail(Code::Internal, "statement expects " + std::to_string(sqlite3_bind_parameter_count(stmt.get())) +
                                      " parameters, given " + std::to_string(params.size()));
    for (std::size_t i = 0; i < params.size(); ++i) MCIMD_CHECK(bind(stmt.get(), i + 1, params[i]));

    auto names = std::make_shared<std::vector<std::string>>();
    const int columns = sqlite3_column_count(stmt.get());
    for (int c = 0; c < columns; ++c) names->emplace_back(sqlite3_column_name(stmt.get(), c));
    std::vector<Row> rows;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      std::vector<Value> values;
      values.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) values.push_back(MCIMD_TRY(column(stmt.get(), c, (*names)[c])));
      rows.emplace_back(names, std::move(values));
    }
    if (rc != SQLITE_DONE) return sqlite_error(db_.get(), rc, where_);
    return rows;
  }

  Status begin(Access access) override {
    return exec(access == Access::Write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  }
  Status commit() override { return exec("COMMIT"); }
  Status rollback() override {
    // A failed statement may have rolled the transaction back already (SQLITE_FULL and kin).
    if (sqlite3_get_autocommit(db_.get())) return {};
    return exec("ROLLBACK");
  }

 private:
  Status exec(const char* statement) {
    const int rc = sqlite3_exec(db_.get(), statement, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return sqlite_error(db_.get(), rc, where_);
    return {};
  }

  Status bind(sqlite3_stmt* stmt, std::size_t index, const Value& value) {
    // "$N" is a named parameter to SQLite: bind by name so that $1 means the first value even
    // where $2 appears before it in the text (PostgreSQL's meaning).
    const std::string name = "$" + std::to_string(index);
    const int at = sqlite3_bind_parameter_index(stmt, name.c_str());
    if (at == 0) return fail(Code::Internal, "statement does not use parameter " + name);
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::monostate>(value)) {
      rc = sqlite3_bind_null(stmt, at);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      rc = sqlite3_bind_int64(stmt, at, *i);
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      if (!valid_text(*s)) return fail(Code::InvalidArgument, "parameter " + name + " is not UTF-8 text without NUL");
      rc = sqlite3_bind_text64(stmt, at, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    } else {
      const auto& b = std::get<Bytes>(value);
      // A null pointer would bind NULL, not an empty value.
      rc = b.empty() ? sqlite3_bind_zeroblob(stmt, at, 0) : sqlite3_bind_blob64(stmt, at, b.data(), b.size(), SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) return sqlite_error(db_.get(), rc, where_);
    return {};
  }

  static Result<Value> column(sqlite3_stmt* stmt, int c, const std::string& name) {
    switch (sqlite3_column_type(stmt, c)) {
      case SQLITE_NULL:
        return Value(std::monostate{});
      case SQLITE_INTEGER:
        return Value(static_cast<int64_t>(sqlite3_column_int64(stmt, c)));
      case SQLITE_TEXT: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
        return Value(p ? std::string(p, n) : std::string());
      }
      case SQLITE_BLOB: {
        const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt, c));
        const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
        return Value(p ? Bytes(p, p + n) : Bytes());
      }
      default:
        return fail(Code::StoreCorrupt, "registry column \"" + name + "\" holds a floating-point number");
    }
  }

  SqliteDb db_;
  std::string where_;
};

}  // namespace

Result<std::unique_ptr<Connection>> open_sqlite(const Target& target, const SqliteOptions& options) {
  // Connections are used by one thread at a time but by many threads: SQLite's own locks of
  // shared state must be compiled in.
  if (!sqlite3_threadsafe()) return fail(Code::Unsupported, "this SQLite library was built without thread support");
  const auto& path = target.sqlite_path;
  if (options.create) {
    std::error_code ec;
    if (path.has_parent_path() && !std::filesystem::exists(path.parent_path(), ec))
      MCIMD_CHECK(make_private_dir(path.parent_path()));
    // Created here, 0600, before SQLite sees it: SQLite would create it 0644, and gives its
    // -wal and -shm files the database file's mode.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return fail_errno("Failed to create the registry " + path.string(), errno);
    ::close(fd);
  } else {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return fail(Code::NotFound, "there is no registry at " + path.string());
  }

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) return sqlite_error(db.get(), rc, "open " + target.description);
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), options.busy_timeout_ms);
  auto connection = std::make_unique<SqliteConnection>(std::move(db), target.description);

  // WAL: readers and one writer at a time, across processes (https://sqlite.org/wal.html).
  // synchronous=FULL: a committed package counter survives a power cut too; NORMAL could lose
  // the last commits and hand out a counter twice.
  auto mode = MCIMD_TRY(connection->run("PRAGMA journal_mode=WAL"));
  if (mode.size() != 1 || MCIMD_TRY(mode[0].text(0)) != "wal")
    return fail(Code::IoError, target.description + ": the database cannot use write-ahead logging");
  MCIMD_CHECK(connection->run("PRAGMA synchronous=FULL"));
  MCIMD_CHECK(connection->run("PRAGMA foreign_keys=ON"));
  return std::unique_ptr<Connection>(std::move(connection));
}

}  // namespace mcimd::op::sql
