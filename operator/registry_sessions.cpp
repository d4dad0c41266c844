// Provisioning sessions: the operator's nonce for one package request, taken once before expiry.
#include "operator/registry_impl.hpp"

namespace mcimd::op {

namespace {

using registry::device_key;
using registry::transaction;

Result<ProvisioningSession> decode_session(std::string id, const sql::Row& row) {
  ProvisioningSession s;
  s.id = std::move(id);
  s.ak_name = MCIMD_TRY(registry::ak_name_from_key(MCIMD_TRY(row.text(0))));
  s.subscription = MCIMD_TRY(row.optional_text(1));
  s.nonce = MCIMD_TRY(row.blob(2));
  if (s.nonce.size() != kSessionNonceSize)
    return fail(Code::StoreCorrupt, "registry session " + s.id + " has a nonce of " + std::to_string(s.nonce.size()) +
                                        " bytes");
  s.created = registry::timestamp_from_db(MCIMD_TRY(row.integer(3)));
  s.expires = registry::timestamp_from_db(MCIMD_TRY(row.integer(4)));
  return s;
}

}  // namespace

Result<std::string> Registry::create_session(const SessionSpec& spec, Timestamp now) const {
  const std::string key = MCIMD_TRY(device_key(spec.ak_name));
  if (spec.nonce.size() != kSessionNonceSize)
    return fail(Code::InvalidArgument, "a session nonce is " + std::to_string(kSessionNonceSize) + " bytes, not " +
                                           std::to_string(spec.nonce.size()));
  if (spec.expires <= now) return fail(Code::InvalidArgument, "a session must expire after it is made");
  if (spec.subscription) MCIMD_CHECK(registry::check_id(*spec.subscription, "a subscription id"));
  const std::string id = MCIMD_TRY(registry::random_id());
  MCIMD_CHECK(transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Status {
    MCIMD_CHECK(registry::require_device(c, key));
    if (spec.subscription) MCIMD_CHECK(registry::require_subscription(c, *spec.subscription));
    MCIMD_CHECK(c.run("INSERT INTO provisioning_sessions (id, device, subscription, nonce, created, expires) "
                      "VALUES ($1, $2, $3, $4, $5, $6)",
                      {id, key, sql::optional_value(spec.subscription), spec.nonce, registry::to_db(now),
                       registry::to_db(spec.expires)}));
    return {};
  }));
  return id;
}

Result<ProvisioningSession> Registry::take_session(std::string_view id, Timestamp now) const {
  MCIMD_CHECK(registry::check_id(id, "a session id"));
  const std::string session(id);
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Result<ProvisioningSession> {
    // One statement checks and consumes: of two takes, the database lets exactly one match.
    auto taken = MCIMD_TRY(c.run("UPDATE provisioning_sessions SET taken = $2 "
                                 "WHERE id = $1 AND taken IS NULL AND expires > $2 "
                                 "RETURNING device, subscription, nonce, created, expires",
                                 {session, registry::to_db(now)}));
    if (taken.size() == 1) return decode_session(session, taken[0]);
    auto rows = MCIMD_TRY(c.run("SELECT taken FROM provisioning_sessions WHERE id = $1", {session}));
    if (rows.empty()) return fail(Code::NotFound, "there is no provisioning session " + session);
    if (MCIMD_TRY(rows[0].optional_integer(0)))
      return fail(Code::Replayed, "provisioning session " + session + " was used already");
    return fail(Code::Expired, "provisioning session " + session + " has expired");
  });
}

Result<std::size_t> Registry::purge_sessions(Timestamp before) const {
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Result<std::size_t> {
    auto rows = MCIMD_TRY(
        c.run("DELETE FROM provisioning_sessions WHERE expires < $1 RETURNING id", {registry::to_db(before)}));
    return rows.size();
  });
}

}  // namespace mcimd::op
