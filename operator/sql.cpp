#include "operator/sql.hpp"

#include <libpq-fe.h>

#include "common/c_handle.hpp"

namespace mcimd::op::sql {

namespace {

constexpr std::string_view kSqliteScheme = "sqlite:";
constexpr std::string_view kPostgresqlSchemes[] = {"postgresql://", "postgres://"};

using ConninfoOptions = CHandle<PQconninfoOption, PQconninfoFree>;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

void add_secret(std::vector<std::string>& secrets, std::string_view raw) {
  if (raw.empty()) return;
  secrets.emplace_back(raw);
  if (auto decoded = percent_decoded(raw); decoded != raw && !decoded.empty()) secrets.push_back(std::move(decoded));
}

// The password of a URI read the way libpq reads it (userinfo ends at the first '@' before the
// path; a "password" query parameter too), found without a full parse so that even a URI libpq
// refuses is never echoed with it.
std::vector<std::string> uri_secrets(std::string_view uri) {
  std::vector<std::string> secrets;
  const auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return secrets;
  std::string_view rest = uri.substr(scheme_end + 3);
  const auto authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  if (const auto at = authority.find('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) add_secret(secrets, userinfo.substr(colon + 1));
  }
  if (const auto query = uri.find('?'); query != std::string_view::npos) {
    std::string_view params = uri.substr(query + 1);
    while (!params.empty()) {
      const auto amp = params.find('&');
      const std::string_view param = params.substr(0, amp);
      if (param.starts_with("password=")) add_secret(secrets, param.substr(9));
      if (amp == std::string_view::npos) break;
      params.remove_prefix(amp + 1);
    }
  }
  return secrets;
}

Result<Target> parse_postgresql(std::string_view connection) {
  Target target;
  target.dialect = Dialect::Postgresql;
  target.conninfo = std::string(connection);
  target.secrets = uri_secrets(connection);
  char* error = nullptr;
  ConninfoOptions options(PQconninfoParse(target.conninfo.c_str(), &error));
  if (!options) {
    std::string message = error ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return fail(Code::InvalidArgument,
                "the PostgreSQL connection string does not parse: " + redact(std::move(message), target.secrets));
  }
  std::string user, host, port, dbname;
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o) {
    if (!o->val) continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "password") add_secret(target.secrets, o->val);
    else if (keyword == "user") user = o->val;
    else if (keyword == "host") host = o->val;
    else if (keyword == "hostaddr" && host.empty()) host = o->val;
    else if (keyword == "port") port = o->val;
    else if (keyword == "dbname") dbname = o->val;
  }
  target.description = "postgresql://" + (user.empty() ? "" : user + "@") + (host.empty() ? "localhost" : host) +
                       (port.empty() ? "" : ":" + port) + "/" + dbname;
  target.description = redact(std::move(target.description), target.secrets);
  return target;
}

}  // namespace

std::string redact(std::string message, std::span<const std::string> secrets) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (auto at = message.find(secret); at != std::string::npos; at = message.find(secret, at + 3))
      message.replace(at, secret.size(), "***");
  }
  return message;
}

bool valid_text(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned c = *p;
    if (c == 0) return false;
    if (c < 0x80) {
      ++p;
      continue;
    }
    // RFC 3629 §4: the lead byte fixes the length and the range of the second byte.
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) n = 2, lo = 0xA0;
    else if (c == 0xED) n = 2, hi = 0x9F;  // no UTF-16 surrogates
    else if (c >= 0xE1 && c <= 0xEF) n = 2;
    else if (c == 0xF0) n = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c == 0xF4) n = 3, hi = 0x8F;  // nothing above U+10FFFF
    else return false;
    if (static_cast<std::size_t>(end - p) <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i <= n; ++i)
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    p += n + 1;
  }
  return true;
}

Result<Target> parse_target(std::string_view connection) {
  if (connection.starts_with(kSqliteScheme)) {
    const std::string_view path = connection.substr(kSqliteScheme.size());
    if (path.empty()) return fail(Code::InvalidArgument, "the registry connection string sqlite: names no file");
    if (path == ":memory:" || path.starts_with("file:"))
      return fail(Code::InvalidArgument,
                  "the registry needs an SQLite database file that all its connections share, not " +
                      std::string(path));
    if (!valid_text(path)) return fail(Code::InvalidArgument, "the registry's SQLite path is not UTF-8 text");
    Target target;
    target.dialect = Dialect::Sqlite;
    target.sqlite_path = std::filesystem::path(std::string(path));
    target.description = "sqlite:" + std::string(path);
    return target;
  }
  for (auto scheme : kPostgresqlSchemes)
    if (connection.starts_with(scheme)) return parse_postgresql(connection);
  return fail(Code::InvalidArgument,
              "the registry connection string is neither sqlite:PATH nor postgresql://… (or postgres://…)");
}

// --- rows ----------------------------------------------------------------------------------------

std::string Row::column(std::size_t i) const {
  if (names_ && i < names_->size()) return (*names_)[i];
  return "#" + std::to_string(i);
}

tl::unexpected<Error> Row::corrupt(std::size_t i, std::string_view expected) const {
  return fail(Code::StoreCorrupt, "registry column \"" + column(i) + "\" does not hold " + std::string(expected));
}

template <class T>
Result<std::optional<T>> Row::optional_as(std::size_t i, std::string_view expected) const {
  if (i >= values_.size()) return corrupt(i, "a value (missing column)");
  if (std::holds_alternative<std::monostate>(values_[i])) return std::optional<T>();
  if (const auto* v = std::get_if<T>(&values_[i])) return std::optional<T>(*v);
  return corrupt(i, expected);
}

template <class T>
Result<T> Row::required_as(std::size_t i, std::string_view expected) const {
  auto v = MCIMD_TRY(optional_as<T>(i, expected));
  if (!v) return corrupt(i, std::string(expected) + " (it is NULL)");
  return std::move(*v);
}

Result<std::optional<int64_t>> Row::optional_integer(std::size_t i) const {
  return optional_as<int64_t>(i, "an integer");
}
Result<int64_t> Row::integer(std::size_t i) const { return required_as<int64_t>(i, "an integer"); }

Result<bool> Row::flag(std::size_t i) const {
  const int64_t v = MCIMD_TRY(integer(i));
  if (v != 0 && v != 1) return corrupt(i, "0 or 1");
  return v == 1;
}

Result<std::optional<std::string>> Row::optional_text(std::size_t i) const {
  auto v = MCIMD_TRY(optional_as<std::string>(i, "text"));
  if (v && !valid_text(*v)) return corrupt(i, "UTF-8 text");
  return v;
}

Result<std::string> Row::text(std::size_t i) const {
  auto v = MCIMD_TRY(optional_text(i));
  if (!v) return corrupt(i, "text (it is NULL)");
  return std::move(*v);
}

Result<std::optional<Bytes>> Row::optional_blob(std::size_t i) const { return optional_as<Bytes>(i, "bytes"); }
Result<Bytes> Row::blob(std::size_t i) const { return required_as<Bytes>(i, "bytes"); }

}  // namespace mcimd::op::sql
