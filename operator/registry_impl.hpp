#pragma once
// Inside the registry: its connection pool, the transaction every call runs in, and the checks
// and conversions the capability files (registry_*.cpp) share. Not for use outside operator/.
#include <condition_variable>
#include <mutex>
#include <type_traits>

#include "operator/registry.hpp"
#include "operator/sql.hpp"

namespace mcimd::op {

struct Registry::Impl {
  sql::Target target;
  RegistryOptions options;

  std::mutex mutex;
  std::condition_variable returned;
  std::vector<std::unique_ptr<sql::Connection>> idle;
  std::size_t open = 0;  // connections lent out plus idle ones

  [[nodiscard]] Result<std::unique_ptr<sql::Connection>> connect() const;
  // An idle connection, a new one while fewer than max_connections are open, else waits for one.
  [[nodiscard]] Result<std::unique_ptr<sql::Connection>> acquire();
  // Back to the pool; a broken connection is closed instead, so the next call reconnects.
  void release(std::unique_ptr<sql::Connection> connection);
};

namespace registry {

// A pooled connection for the length of one call. One left inside a transaction (an exception
// went through) is closed, never pooled.
class Lease {
 public:
  Lease(Registry::Impl& impl, std::unique_ptr<sql::Connection> connection)
      : impl_(impl), connection_(std::move(connection)) {}
  ~Lease() {
    if (in_transaction_) connection_.reset();
    impl_.release(std::move(connection_));
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  sql::Connection& operator*() { return *connection_; }
  sql::Connection* operator->() { return connection_.get(); }
  void set_in_transaction(bool in) { in_transaction_ = in; }

 private:
  Registry::Impl& impl_;
  std::unique_ptr<sql::Connection> connection_;
  bool in_transaction_ = false;
};

// Runs body(connection) on a pooled connection, outside a transaction: for single statements,
// which are atomic on their own.
template <class F>
auto query(Registry::Impl& impl, F&& body) -> std::invoke_result_t<F&, sql::Connection&> {
  auto connection = impl.acquire();
  if (!connection) return tl::unexpected(std::move(connection).error());
  Lease lease(impl, std::move(*connection));
  return body(*lease);
}

// Runs body(connection) in one transaction: committed when body succeeds, rolled back when it
// returns an error. A write transaction holds the write lock from its start (see sql.hpp).
template <class F>
auto transaction(Registry::Impl& impl, sql::Access access, F&& body) -> std::invoke_result_t<F&, sql::Connection&> {
  auto connection = impl.acquire();
  if (!connection) return tl::unexpected(std::move(connection).error());
  Lease lease(impl, std::move(*connection));
  if (auto begun = lease->begin(access); !begun) return tl::unexpected(std::move(begun).error());
  lease.set_in_transaction(true);
  auto result = body(*lease);
  if (!result) {
    if (lease->rollback()) lease.set_in_transaction(false);
    return result;
  }
  if (auto committed = lease->commit(); !committed) {
    if (lease->rollback()) lease.set_in_transaction(false);
    return tl::unexpected(std::move(committed).error());
  }
  lease.set_in_transaction(false);
  return result;
}

inline constexpr std::size_t kSha256Size = 32;

// Times are whole seconds since the Unix epoch in BIGINT columns.
inline int64_t to_db(Timestamp t) { return t.time_since_epoch().count(); }
inline Timestamp timestamp_from_db(int64_t seconds) { return Timestamp(std::chrono::seconds(seconds)); }

// The devices table's key for an AK name (its lower-case hex); InvalidArgument for a name that
// cannot be one (empty, or longer than nameAlg and a SHA-512 digest).
[[nodiscard]] Result<std::string> device_key(std::span<const uint8_t> ak_name);
// Back from the key; StoreCorrupt for a key that is not hex.
[[nodiscard]] Result<Bytes> ak_name_from_key(const std::string& key);
// NotFound "no device … is registered" unless the devices table has the key.
[[nodiscard]] Status require_device(sql::Connection& c, const std::string& key);
// NotFound "there is no subscription …" unless the subscriptions table has the id.
[[nodiscard]] Status require_subscription(sql::Connection& c, const std::string& id);

// [A-Za-z0-9._-]{1,64}; InvalidArgument naming `what` otherwise.
[[nodiscard]] Status check_id(std::string_view id, std::string_view what);
// Digits only, min..max of them; InvalidArgument naming `what` otherwise.
[[nodiscard]] Status check_digits(std::string_view s, std::size_t min, std::size_t max, std::string_view what);
// ITU-T E.118: an ICCID is at most 19 digits and a Luhn check digit; issuers use 18 to 20.
[[nodiscard]] Status check_iccid(std::string_view iccid);
// TS 23.003 §2.2: MCC (3) + MNC (2 or 3) + MSIN, at most 15 digits; at least one MSIN digit.
[[nodiscard]] Status check_imsi(std::string_view imsi);
// One line of UTF-8 text, at most max bytes; InvalidArgument naming `what` otherwise.
[[nodiscard]] Status check_line(std::string_view s, std::size_t max, std::string_view what, bool allow_empty);
// 128 random bits as base64url (22 characters): an id nobody can guess.
[[nodiscard]] Result<std::string> random_id();

// A TPM clock's four fields in four columns: all set or all NULL (StoreCorrupt otherwise). The
// 64-bit clock is kept bit for bit in a signed BIGINT.
[[nodiscard]] Result<std::optional<attestation::ClockInfo>> clock_from_row(const sql::Row& row, std::size_t first);
void append_clock(std::vector<sql::Value>& params, const std::optional<attestation::ClockInfo>& clock);

}  // namespace registry
}  // namespace mcimd::op
