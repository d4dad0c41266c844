// The PostgreSQL driver of the registry (libpq): for fleets whose registry outgrows one machine.
// Parameters travel out of line (PQexecParams), never spliced into the statement; results come
// in binary form and are decoded by their type, so no value is ever parsed back from text.
#include <libpq-fe.h>

#include <cstring>

#include "common/c_handle.hpp"
#include "operator/sql.hpp"

namespace mcimd::op::sql {

namespace {

using PgConn = CHandle<PGconn, PQfinish>;
using PgResult = CHandle<PGresult, PQclear>;

// Type OIDs of the built-in types the schema uses (PostgreSQL's pg_type.dat; fixed since 7.x).
constexpr Oid kBoolOid = 16, kByteaOid = 17, kCharOid = 18, kNameOid = 19, kInt8Oid = 20, kInt2Oid = 21,
              kInt4Oid = 23, kTextOid = 25, kUnknownOid = 705, kBpcharOid = 1042, kVarcharOid = 1043;

std::string one_line(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  for (auto at = message.find('\n'); at != std::string::npos; at = message.find('\n', at)) message.replace(at, 1, "; ");
  return message;
}

// Named codes for SQLSTATEs (PostgreSQL manual, appendix A).
Code code_of(std::string_view sqlstate) {
  if (sqlstate == "23505") return Code::AlreadyExists;      // unique_violation
  if (sqlstate == "23503") return Code::NotFound;           // foreign_key_violation
  if (sqlstate.starts_with("23")) return Code::InvalidArgument;  // check, not null
  if (sqlstate.starts_with("22")) return Code::InvalidArgument;  // data exception: encoding, range
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate == "57014") return Code::Busy;
  if (sqlstate == "42P01" || sqlstate == "42703") return Code::StoreCorrupt;  // undefined table, column
  return Code::IoError;
}

uint64_t big_endian(const char* p, std::size_t n) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

class PostgresConnection final : public Connection {
 public:
  PostgresConnection(PgConn conn, const Target& target)
      : conn_(std::move(conn)), secrets_(target.secrets), where_(target.description) {}

  using Connection::run;
  Dialect dialect() const override { return Dialect::Postgresql; }
  bool broken() const override { return PQstatus(conn_.get()) != CONNECTION_OK; }

  Result<std::vector<Row>> run(std::string_view statement, std::span<const Value> params) override {
    static const char kEmpty[1] = {0};
    const std::size_t n = params.size();
    std::vector<std::string> texts(n);
    std::vector<const char*> values(n, nullptr);
    std::vector<int> lengths(n, 0), formats(n, 0);
    std::vector<Oid> types(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const Value& v = params[i];
      if (const auto* integer = std::get_if<int64_t>(&v)) {
        texts[i] = std::to_string(*integer);
        values[i] = texts[i].c_str();
        types[i] = kInt8Oid;
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        if (!valid_text(*s))
          return fail(Code::InvalidArgument, "parameter $" + std::to_string(i + 1) + " is not UTF-8 text without NUL");
        values[i] = s->c_str();
        types[i] = kTextOid;
      } else if (const auto* b = std::get_if<Bytes>(&v)) {
        // A null pointer would mean SQL NULL, not an empty value.
        values[i] = b->empty() ? kEmpty : reinterpret_cast<const char*>(b->data());
        lengths[i] = static_cast<int>(b->size());
        formats[i] = 1;
        types[i] = kByteaOid;
      }
    }
    const std::string text(statement);
    PgResult result(PQexecParams(conn_.get(), text.c_str(), static_cast<int>(n), types.data(), values.data(),
                                 lengths.data(), formats.data(), /*resultFormat=*/1));
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return error(result.get());

    const int columns = PQnfields(result.get());
    auto names = std::make_shared<std::vector<std::string>>();
    for (int c = 0; c < columns; ++c) names->emplace_back(PQfname(result.get(), c));
    std::vector<Row> rows;
    const int count = PQntuples(result.get());
    rows.reserve(static_cast<std::size_t>(count));
    for (int r = 0; r < count; ++r) {
      std::vector<Value> row;
      row.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) row.push_back(MCIMD_TRY(decode(result.get(), r, c, (*names)[c])));
      rows.emplace_back(names, std::move(row));
    }
    return rows;
  }

  Status begin(Access access) override { return command(access == Access::Write ? "BEGIN" : "BEGIN READ ONLY"); }
  Status commit() override {
    PgResult result(PQexec(conn_.get(), "COMMIT"));
    if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK) return error(result.get());
    // COMMIT of a transaction that failed answers "ROLLBACK" without an error.
    if (std::strcmp(PQcmdStatus(result.get()), "COMMIT") != 0)
      return fail(Code::IoError, where_ + ": the transaction was rolled back");
    return {};
  }
  Status rollback() override { return command("ROLLBACK"); }

 private:
  Status command(const char* statement) {
    PgResult result(PQexec(conn_.get(), statement));
    if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK) return error(result.get());
    return {};
  }

  tl::unexpected<Error> error(const PGresult* result) const {
    const char* sqlstate = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string message = primary ? primary : PQerrorMessage(conn_.get());
    if (message.empty()) message = "the server did not answer";
    return fail(sqlstate ? code_of(sqlstate) : Code::IoError, where_ + ": " + redact(one_line(message), secrets_));
  }

  static Result<Value> decode(const PGresult* result, int r, int c, const std::string& name) {
    if (PQgetisnull(result, r, c)) return Value(std::monostate{});
    const char* p = PQgetvalue(result, r, c);
    const auto n = static_cast<std::size_t>(PQgetlength(result, r, c));
    auto wrong_size = [&] { return fail(Code::StoreCorrupt, "registry column \"" + name + "\" has a malformed value"); };
    switch (PQftype(result, c)) {
      case kInt8Oid:
        if (n != 8) return wrong_size();
        return Value(static_cast<int64_t>(big_endian(p, 8)));
      case kInt4Oid:
        if (n != 4) return wrong_size();
        return Value(static_cast<int64_t>(static_cast<int32_t>(big_endian(p, 4))));
      case kInt2Oid:
        if (n != 2) return wrong_size();
        return Value(static_cast<int64_t>(static_cast<int16_t>(big_endian(p, 2))));
      case kBoolOid:
        if (n != 1) return wrong_size();
        return Value(static_cast<int64_t>(p[0] != 0));
      case kTextOid:
      case kVarcharOid:
      case kBpcharOid:
      case kNameOid:
      case kCharOid:
      case kUnknownOid:
        return Value(std::string(p, n));
      case kByteaOid:
        return Value(Bytes(reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(p) + n));
      default:
        return fail(Code::StoreCorrupt, "registry column \"" + name + "\" has an unexpected type (OID " +
                                            std::to_string(PQftype(result, c)) + ")");
    }
  }

  PgConn conn_;
  std::vector<std::string> secrets_;
  std::string where_;
};

}  // namespace

Result<std::unique_ptr<Connection>> open_postgresql(const Target& target) {
  if (!PQisthreadsafe()) return fail(Code::Unsupported, "this libpq was built without thread support");
  // connect_timeout first, so a value in the URI overrides it: without one libpq waits for the
  // operating system to give up on an unreachable host, minutes later.
  const char* const keywords[] = {"connect_timeout", "dbname", "fallback_application_name", nullptr};
  const char* const values[] = {"10", target.conninfo.c_str(), "mcim-operator", nullptr};
  PgConn conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (!conn) return fail(Code::Internal, "libpq could not allocate a connection");
  if (PQstatus(conn.get()) != CONNECTION_OK)
    return fail(Code::IoError, "Failed to connect to the registry " + target.description + ": " +
                                   redact(one_line(PQerrorMessage(conn.get())), target.secrets));
  // libpq prints NOTICEs to stderr by default; a library does not write to stderr.
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(std::make_unique<PostgresConnection>(std::move(conn), target));
}

}  // namespace mcimd::op::sql
