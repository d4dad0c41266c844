#pragma once
// The registry's narrow view of a SQL database: one connection, statements with numbered
// parameters ($1, $2, …, the same text for SQLite and PostgreSQL), rows of four value kinds, and
// transactions. Two drivers implement it: SQLite (sql_sqlite.cpp) and PostgreSQL through libpq
// (sql_postgres.cpp). Driver errors become named codes here, once:
//   unique or primary key violation   AlreadyExists
//   foreign key violation             NotFound
//   check or not-null violation       InvalidArgument
//   lock not granted in time          Busy
//   not a database, damaged file      StoreCorrupt
//   anything else (connection lost)   IoError, with the driver's message
// A connection is used by one thread at a time; the registry's pool sees to that.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::op::sql {

enum class Dialect { Sqlite, Postgresql };

// A parameter or column value. Text must be UTF-8 without NUL (what PostgreSQL stores), so both
// drivers refuse the same values.
using Value = std::variant<std::monostate, int64_t, std::string, Bytes>;

inline Value null() { return std::monostate{}; }
template <class T>
Value optional_value(const std::optional<T>& v) {
  if (!v) return std::monostate{};
  return Value(*v);
}

// One result row. Every accessor checks the kind it expects and answers StoreCorrupt naming the
// column otherwise: a row written behind the registry's back is refused, never guessed at.
class Row {
 public:
  Row(std::shared_ptr<const std::vector<std::string>> names, std::vector<Value> values)
      : names_(std::move(names)), values_(std::move(values)) {}

  [[nodiscard]] Result<int64_t> integer(std::size_t i) const;
  [[nodiscard]] Result<std::optional<int64_t>> optional_integer(std::size_t i) const;
  [[nodiscard]] Result<std::string> text(std::size_t i) const;
  [[nodiscard]] Result<std::optional<std::string>> optional_text(std::size_t i) const;
  [[nodiscard]] Result<Bytes> blob(std::size_t i) const;
  [[nodiscard]] Result<std::optional<Bytes>> optional_blob(std::size_t i) const;
  [[nodiscard]] Result<bool> flag(std::size_t i) const;  // an integer 0 or 1
  std::size_t size() const { return values_.size(); }

 private:
  // The value of column i if it has kind T, nullopt for NULL; StoreCorrupt naming `expected`.
  template <class T>
  Result<std::optional<T>> optional_as(std::size_t i, std::string_view expected) const;
  template <class T>
  Result<T> required_as(std::size_t i, std::string_view expected) const;
  std::string column(std::size_t i) const;
  tl::unexpected<Error> corrupt(std::size_t i, std::string_view expected) const;
  std::shared_ptr<const std::vector<std::string>> names_;
  std::vector<Value> values_;
};

enum class Access { Read, Write };

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // Runs one statement with parameters $1..$n bound to params in order; the rows it returns
  // (statements with RETURNING return rows too).
  [[nodiscard]] virtual Result<std::vector<Row>> run(std::string_view statement, std::span<const Value> params) = 0;
  // A write transaction takes the database's write lock at once (SQLite BEGIN IMMEDIATE), so two
  // writers queue on the busy timeout instead of failing when a read turns into a write.
  [[nodiscard]] virtual Status begin(Access access) = 0;
  [[nodiscard]] virtual Status commit() = 0;
  [[nodiscard]] virtual Status rollback() = 0;
  // The connection can no longer be used (the server went away): drop it, do not pool it.
  virtual bool broken() const = 0;

  [[nodiscard]] Result<std::vector<Row>> run(std::string_view statement, std::initializer_list<Value> params = {}) {
    return run(statement, std::span<const Value>(params.begin(), params.size()));
  }
};

// A parsed connection string: where the registry lives, and how to describe it in messages
// without the password a PostgreSQL URI may carry.
struct Target {
  Dialect dialect = Dialect::Sqlite;
  std::filesystem::path sqlite_path;  // Sqlite
  std::string conninfo;               // Postgresql: the URI as given, for libpq only
  std::string description;            // "sqlite:/path" or "postgresql://user@host:port/db"
  std::vector<std::string> secrets;   // strings never to show (the password, raw and decoded)
};

// "sqlite:PATH" or "postgresql://…" / "postgres://…" (a libpq connection URI). InvalidArgument
// for anything else, without echoing the string (it may hold a password).
[[nodiscard]] Result<Target> parse_target(std::string_view connection);

struct SqliteOptions {
  bool create = true;                    // create the file (0600) and missing parents (0700)
  int busy_timeout_ms = 30000;
};
[[nodiscard]] Result<std::unique_ptr<Connection>> open_sqlite(const Target& target, const SqliteOptions& options);
[[nodiscard]] Result<std::unique_ptr<Connection>> open_postgresql(const Target& target);

// Replaces every secret in a driver message with "***".
std::string redact(std::string message, std::span<const std::string> secrets);

// Whether text is UTF-8 without NUL (RFC 3629: no overlong forms, no surrogates).
bool valid_text(std::string_view text);

}  // namespace mcimd::op::sql
