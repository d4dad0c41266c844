// Subscriptions (an ICCID and IMSI an operator issues) and which device each belongs to.
#include "operator/registry_impl.hpp"

namespace mcimd::op {

namespace {

using registry::device_key;
using registry::query;
using registry::transaction;

constexpr std::string_view kSubscriptionColumns = "s.id, s.operator_id, s.iccid, s.imsi, s.created";

Result<Subscription> decode_subscription(const sql::Row& row) {
  Subscription s;
  s.id = MCIMD_TRY(row.text(0));
  s.operator_id = MCIMD_TRY(row.text(1));
  s.iccid = MCIMD_TRY(row.text(2));
  s.imsi = MCIMD_TRY(row.text(3));
  s.created = registry::timestamp_from_db(MCIMD_TRY(row.integer(4)));
  return s;
}

Result<std::optional<Subscription>> find_one(Registry::Impl& impl, std::string_view where, const std::string& value) {
  return query(impl, [&](sql::Connection& c) -> Result<std::optional<Subscription>> {
    auto rows = MCIMD_TRY(c.run("SELECT " + std::string(kSubscriptionColumns) + " FROM subscriptions s WHERE " +
                                    std::string(where) + " = $1",
                                {value}));
    if (rows.empty()) return std::optional<Subscription>();
    return std::optional<Subscription>(MCIMD_TRY(decode_subscription(rows[0])));
  });
}

}  // namespace

Status registry::require_subscription(sql::Connection& c, const std::string& id) {
  auto rows = MCIMD_TRY(c.run("SELECT 1 FROM subscriptions WHERE id = $1", {id}));
  if (rows.empty()) return fail(Code::NotFound, "there is no subscription " + id);
  return {};
}

Result<Subscription> Registry::create_subscription(const SubscriptionSpec& spec, Timestamp now) const {
  if (spec.id) MCIMD_CHECK(registry::check_id(*spec.id, "a subscription id"));
  MCIMD_CHECK(registry::check_id(spec.operator_id, "an operator id"));
  MCIMD_CHECK(registry::check_iccid(spec.iccid));
  MCIMD_CHECK(registry::check_imsi(spec.imsi));
  Subscription s{spec.id ? *spec.id : MCIMD_TRY(registry::random_id()), spec.operator_id, spec.iccid, spec.imsi, now};
  auto inserted = transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) {
    return c.run("INSERT INTO subscriptions (id, operator_id, iccid, imsi, created) VALUES ($1, $2, $3, $4, $5)",
                 {s.id, s.operator_id, s.iccid, s.imsi, registry::to_db(now)});
  });
  if (!inserted) {
    if (inserted.error().code == Code::AlreadyExists)
      return fail(Code::AlreadyExists, "a subscription with id " + s.id + ", ICCID " + s.iccid + " or IMSI " + s.imsi +
                                           " exists already (" + inserted.error().message + ")");
    return tl::unexpected(std::move(inserted).error());
  }
  return s;
}

Result<std::optional<Subscription>> Registry::find_subscription(std::string_view id) const {
  MCIMD_CHECK(registry::check_id(id, "a subscription id"));
  return find_one(*impl_, "s.id", std::string(id));
}

Result<std::optional<Subscription>> Registry::find_subscription_by_iccid(std::string_view iccid) const {
  MCIMD_CHECK(registry::check_iccid(iccid));
  return find_one(*impl_, "s.iccid", std::string(iccid));
}

Status Registry::link_subscription(std::span<const uint8_t> ak_name, std::string_view subscription,
                                   Timestamp now) const {
  const std::string key = MCIMD_TRY(device_key(ak_name));
  MCIMD_CHECK(registry::check_id(subscription, "a subscription id"));
  const std::string id(subscription);
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Status {
    MCIMD_CHECK(registry::require_device(c, key));
    MCIMD_CHECK(registry::require_subscription(c, id));
    MCIMD_CHECK(c.run("INSERT INTO device_subscriptions (subscription, device, linked) VALUES ($1, $2, $3) "
                      "ON CONFLICT (subscription) DO NOTHING",
                      {id, key, registry::to_db(now)}));
    auto owner = MCIMD_TRY(c.run("SELECT device FROM device_subscriptions WHERE subscription = $1", {id}));
    if (owner.size() != 1) return fail(Code::Internal, "subscription " + id + " was linked and is not");
    const std::string device = MCIMD_TRY(owner[0].text(0));
    if (device != key)
      return fail(Code::AlreadyExists, "subscription " + id + " belongs to device " + device + "; unlink it first");
    return {};
  });
}

Status Registry::unlink_subscription(std::span<const uint8_t> ak_name, std::string_view subscription) const {
  const std::string key = MCIMD_TRY(device_key(ak_name));
  MCIMD_CHECK(registry::check_id(subscription, "a subscription id"));
  const std::string id(subscription);
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Status {
    auto rows = MCIMD_TRY(c.run(
        "DELETE FROM device_subscriptions WHERE subscription = $1 AND device = $2 RETURNING subscription", {id, key}));
    if (rows.empty()) return fail(Code::NotFound, "subscription " + id + " is not linked to device " + key);
    return {};
  });
}

Result<std::vector<Subscription>> Registry::subscriptions_of(std::span<const uint8_t> ak_name) const {
  const std::string key = MCIMD_TRY(device_key(ak_name));
  return query(*impl_, [&](sql::Connection& c) -> Result<std::vector<Subscription>> {
    MCIMD_CHECK(registry::require_device(c, key));
    auto rows = MCIMD_TRY(c.run("SELECT " + std::string(kSubscriptionColumns) +
                                    " FROM device_subscriptions l JOIN subscriptions s ON s.id = l.subscription "
                                    "WHERE l.device = $1 ORDER BY l.linked, s.id",
                                {key}));
    std::vector<Subscription> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(MCIMD_TRY(decode_subscription(row)));
    return out;
  });
}

Result<std::optional<Bytes>> Registry::device_of_subscription(std::string_view subscription) const {
  MCIMD_CHECK(registry::check_id(subscription, "a subscription id"));
  const std::string id(subscription);
  return query(*impl_, [&](sql::Connection& c) -> Result<std::optional<Bytes>> {
    auto rows = MCIMD_TRY(c.run("SELECT device FROM device_subscriptions WHERE subscription = $1", {id}));
    if (rows.empty()) return std::optional<Bytes>();
    return std::optional<Bytes>(MCIMD_TRY(registry::ak_name_from_key(MCIMD_TRY(rows[0].text(0)))));
  });
}

}  // namespace mcimd::op
