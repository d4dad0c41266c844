// Device records: what enrolment (DPF/RO) and validation (PVA) keep per attestation key.
#include "operator/registry_impl.hpp"
#include "protocol/quote.hpp"

namespace mcimd::op {

namespace {

using registry::device_key;
using registry::query;
using registry::kSha256Size;
using registry::transaction;

constexpr std::string_view kDeviceColumns =
    "device, ak_public, ek_public, ek_certificate, enrolled, uncertified_ek, pending_secret_sha256, "
    "last_clock, last_reset_count, last_restart_count, last_safe, revision";

Result<DeviceRecord> decode_device(const sql::Row& row) {
  DeviceRecord out;
  const std::string id = MCIMD_TRY(row.text(0));
  out.ak_public = MCIMD_TRY(row.blob(1));
  out.ek_public = MCIMD_TRY(row.blob(2));
  out.ek_certificate = MCIMD_TRY(row.optional_blob(3));
  out.enrolled = MCIMD_TRY(row.flag(4));
  out.uncertified_ek = MCIMD_TRY(row.flag(5));
  out.pending_secret_sha256 = MCIMD_TRY(row.optional_blob(6));
  out.last_clock = MCIMD_TRY(registry::clock_from_row(row, 7));
  const int64_t revision = MCIMD_TRY(row.integer(11));
  if (revision <= 0) return fail(Code::StoreCorrupt, "its revision is not positive");
  out.revision = static_cast<uint64_t>(revision);
  if (out.pending_secret_sha256 && out.pending_secret_sha256->size() != kSha256Size)
    return fail(Code::StoreCorrupt, "its pending_secret_sha256 is not a SHA-256 digest");
  if (out.uncertified_ek != !out.ek_certificate)
    return fail(Code::StoreCorrupt, "its uncertified_ek contradicts its EK certificate");
  // The name is derived, never trusted from the row: a row edited to claim another device's id
  // is refused.
  auto name = protocol::object_name(out.ak_public);
  if (!name) return fail(Code::StoreCorrupt, "its ak_public: " + name.error().message);
  out.ak_name = std::move(*name);
  if (device_id(out.ak_name) != id) return fail(Code::StoreCorrupt, "its AK is another device's");
  return out;
}

// The row's device named in the error, so an operator knows which row to look at.
Result<DeviceRecord> decode_device_named(const sql::Row& row) {
  auto record = decode_device(row);
  if (!record) {
    auto id = row.text(0);
    return fail(Code::StoreCorrupt,
                "registry device " + (id ? id->substr(0, 140) : std::string("(no id)")) + ": " + record.error().message);
  }
  return record;
}

Status check_record(const DeviceRecord& r) {
  auto name = protocol::object_name(r.ak_public);
  if (!name) return fail(Code::InvalidArgument, "device record ak_public: " + name.error().message);
  if (*name != r.ak_name) return fail(Code::InvalidArgument, "device record ak_name is not its AK's name");
  if (r.pending_secret_sha256 && r.pending_secret_sha256->size() != kSha256Size)
    return fail(Code::InvalidArgument, "device record pending_secret_sha256 is not a SHA-256 digest");
  if (r.uncertified_ek != !r.ek_certificate)
    return fail(Code::InvalidArgument, "device record uncertified_ek contradicts its EK certificate");
  if (r.revision > static_cast<uint64_t>(INT64_MAX))
    return fail(Code::InvalidArgument, "device record revision is out of range");
  return {};
}

}  // namespace

Result<std::optional<DeviceRecord>> Registry::find(std::span<const uint8_t> ak_name) const {
  const std::string key = MCIMD_TRY(device_key(ak_name));
  return query(*impl_, [&](sql::Connection& c) -> Result<std::optional<DeviceRecord>> {
    auto rows = MCIMD_TRY(c.run("SELECT " + std::string(kDeviceColumns) + " FROM devices WHERE device = $1", {key}));
    if (rows.empty()) return std::optional<DeviceRecord>();
    return std::optional<DeviceRecord>(MCIMD_TRY(decode_device_named(rows[0])));
  });
}

Result<std::vector<DeviceRecord>> Registry::list() const {
  return query(*impl_, [&](sql::Connection& c) -> Result<std::vector<DeviceRecord>> {
    auto rows = MCIMD_TRY(c.run("SELECT " + std::string(kDeviceColumns) + " FROM devices ORDER BY device"));
    std::vector<DeviceRecord> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(MCIMD_TRY(decode_device_named(row)));
    return out;
  });
}

Status Registry::store(DeviceRecord& record) const {
  MCIMD_CHECK(check_record(record));
  const std::string key = MCIMD_TRY(device_key(record.ak_name));
  std::vector<sql::Value> params{key,
                                 record.ak_public,
                                 record.ek_public,
                                 sql::optional_value(record.ek_certificate),
                                 int64_t{record.enrolled ? 1 : 0},
                                 int64_t{record.uncertified_ek ? 1 : 0},
                                 sql::optional_value(record.pending_secret_sha256)};
  registry::append_clock(params, record.last_clock);

  auto stored = transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Result<std::vector<sql::Row>> {
    if (record.revision == 0)
      return c.run("INSERT INTO devices (" + std::string(kDeviceColumns) +
                       ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1) "
                       "ON CONFLICT (device) DO NOTHING RETURNING revision",
                   params);
    params.emplace_back(static_cast<int64_t>(record.revision));
    return c.run(
        "UPDATE devices SET ak_public = $2, ek_public = $3, ek_certificate = $4, enrolled = $5, uncertified_ek = $6, "
        "pending_secret_sha256 = $7, last_clock = $8, last_reset_count = $9, last_restart_count = $10, "
        "last_safe = $11, revision = revision + 1 WHERE device = $1 AND revision = $12 RETURNING revision",
        params);
  });
  if (!stored) return tl::unexpected(std::move(stored).error());
  if (stored->empty())
    return fail(Code::Busy, "device " + key + " was changed by another operation meanwhile; nothing was stored, "
                            "try again");
  record.revision = static_cast<uint64_t>(MCIMD_TRY((*stored)[0].integer(0)));
  return {};
}

}  // namespace mcimd::op
