// MCIM packages (SHO): each device's package counter, the packages issued, their receipts.
#include "operator/registry_impl.hpp"

namespace mcimd::op {

namespace {

using registry::device_key;
using registry::query;
using registry::kSha256Size;
using registry::transaction;

constexpr std::size_t kMaxFailureSize = 4096;
constexpr std::string_view kPackageColumns =
    "package_id, device, counter, iccid, imsi, package_sha256, issued, expires, state, receipt_sha256, "
    "receipt_clock, receipt_reset_count, receipt_restart_count, receipt_safe, received, failure, failed";

std::optional<PackageState> package_state_from_name(std::string_view name) {
  for (auto s : {PackageState::Issued, PackageState::Installed, PackageState::Failed})
    if (package_state_name(s) == name) return s;
  return std::nullopt;
}

Result<PackageRecord> decode_package(const sql::Row& row) {
  PackageRecord p;
  PackageSpec& s = p.spec;
  s.package_id = MCIMD_TRY(row.text(0));
  const auto corrupt = [&](std::string_view why) {
    return fail(Code::StoreCorrupt, "registry package " + s.package_id.substr(0, kMaxIdSize) + ": " + std::string(why));
  };
  s.ak_name = MCIMD_TRY(registry::ak_name_from_key(MCIMD_TRY(row.text(1))));
  const int64_t counter = MCIMD_TRY(row.integer(2));
  if (counter <= 0) return corrupt("its counter is not positive");
  s.counter = static_cast<uint64_t>(counter);
  s.iccid = MCIMD_TRY(row.text(3));
  s.imsi = MCIMD_TRY(row.text(4));
  s.package_sha256 = MCIMD_TRY(row.blob(5));
  if (s.package_sha256.size() != kSha256Size) return corrupt("its package_sha256 is not a SHA-256 digest");
  s.issued = registry::timestamp_from_db(MCIMD_TRY(row.integer(6)));
  s.expires = registry::timestamp_from_db(MCIMD_TRY(row.integer(7)));
  const std::string state = MCIMD_TRY(row.text(8));
  const auto parsed = package_state_from_name(state);
  if (!parsed) return corrupt("its state is not issued, installed or failed");
  p.state = *parsed;

  const auto receipt_sha256 = MCIMD_TRY(row.optional_blob(9));
  const auto clock = MCIMD_TRY(registry::clock_from_row(row, 10));
  const auto received = MCIMD_TRY(row.optional_integer(14));
  const bool has_receipt = receipt_sha256 || clock || received;
  if (has_receipt != (p.state == PackageState::Installed)) return corrupt("its receipt does not match its state");
  if (has_receipt) {
    if (!receipt_sha256 || !clock || !received || receipt_sha256->size() != kSha256Size)
      return corrupt("its receipt is incomplete");
    p.receipt = InstallReceiptInfo{*clock, *receipt_sha256, registry::timestamp_from_db(*received)};
  }
  p.failure = MCIMD_TRY(row.optional_text(15));
  const auto failed = MCIMD_TRY(row.optional_integer(16));
  if (p.failure.has_value() != (p.state == PackageState::Failed) || failed.has_value() != p.failure.has_value())
    return corrupt("its failure does not match its state");
  if (failed) p.failed = registry::timestamp_from_db(*failed);
  return p;
}

// Why a state change from Issued did not happen, read after the guarded UPDATE matched nothing.
Status explain_not_issued(sql::Connection& c, const std::string& id, std::string_view change) {
  auto rows = MCIMD_TRY(c.run("SELECT state FROM packages WHERE package_id = $1", {id}));
  if (rows.empty()) return fail(Code::NotFound, "there is no package " + id);
  const std::string state = MCIMD_TRY(rows[0].text(0));
  if (state == package_state_name(PackageState::Installed) && change == "installed")
    return fail(Code::Replayed, "package " + id + " is installed already: its receipt counts once");
  return fail(Code::InvalidState, "package " + id + " is " + state + ", so it cannot be marked " + std::string(change));
}

}  // namespace

std::string_view package_state_name(PackageState state) {
  switch (state) {
    case PackageState::Issued: return "issued";
    case PackageState::Installed: return "installed";
    case PackageState::Failed: return "failed";
  }
  return "issued";
}

Result<uint64_t> Registry::next_package_counter(std::span<const uint8_t> ak_name, uint64_t accepted) const {
  const std::string key = MCIMD_TRY(device_key(ak_name));
  if (accepted >= static_cast<uint64_t>(INT64_MAX))
    return fail(Code::InvalidArgument, "device " + key + " says it accepted package counter " +
                                           std::to_string(accepted) + ": no counter is left above it");
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Result<uint64_t> {
    // Read and increment in one statement under the write lock: no two callers see one value.
    // CASE rather than GREATEST or MAX: the one spelling SQLite and PostgreSQL share.
    auto rows = MCIMD_TRY(c.run("UPDATE devices SET package_counter = "
                                "(CASE WHEN package_counter > $3 THEN package_counter ELSE $3 END) + 1 "
                                "WHERE device = $1 AND package_counter < $2 RETURNING package_counter",
                                {key, int64_t{INT64_MAX}, static_cast<int64_t>(accepted)}));
    if (rows.empty()) {
      MCIMD_CHECK(registry::require_device(c, key));
      return fail(Code::InvalidState, "device " + key + " has used every package counter");
    }
    const int64_t counter = MCIMD_TRY(rows[0].integer(0));
    if (counter <= 0) return fail(Code::StoreCorrupt, "registry device " + key + " has a negative package counter");
    return static_cast<uint64_t>(counter);
  });
}

Status Registry::record_package(const PackageSpec& spec) const {
  MCIMD_CHECK(registry::check_id(spec.package_id, "a package id"));
  const std::string key = MCIMD_TRY(device_key(spec.ak_name));
  if (spec.counter == 0 || spec.counter > static_cast<uint64_t>(INT64_MAX))
    return fail(Code::InvalidArgument, "a package counter is 1 or more, as next_package_counter hands them out");
  MCIMD_CHECK(registry::check_iccid(spec.iccid));
  MCIMD_CHECK(registry::check_imsi(spec.imsi));
  if (spec.package_sha256.size() != kSha256Size)
    return fail(Code::InvalidArgument, "package_sha256 is a SHA-256 digest, 32 bytes");
  if (spec.expires <= spec.issued) return fail(Code::InvalidArgument, "a package must expire after it is issued");
  const auto counter = static_cast<int64_t>(spec.counter);

  auto recorded = transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Status {
    // The device's row decides: the counter must be one next_package_counter handed out.
    auto rows = MCIMD_TRY(c.run(
        "INSERT INTO packages (package_id, device, counter, iccid, imsi, package_sha256, issued, expires, state) "
        "SELECT $1, device, $3, $4, $5, $6, $7, $8, 'issued' FROM devices WHERE device = $2 AND package_counter >= $3 "
        "RETURNING package_id",
        {spec.package_id, key, counter, spec.iccid, spec.imsi, spec.package_sha256, registry::to_db(spec.issued),
         registry::to_db(spec.expires)}));
    if (!rows.empty()) return {};
    MCIMD_CHECK(registry::require_device(c, key));
    return fail(Code::InvalidArgument, "package counter " + std::to_string(spec.counter) + " of device " + key +
                                           " was not handed out by next_package_counter");
  });
  if (!recorded && recorded.error().code == Code::AlreadyExists)
    return fail(Code::AlreadyExists, "package " + spec.package_id + ", or counter " + std::to_string(spec.counter) +
                                         " of device " + key + ", is recorded already (" + recorded.error().message + ")");
  return recorded;
}

Status Registry::mark_installed(std::string_view package_id, const InstallReceiptInfo& receipt) const {
  MCIMD_CHECK(registry::check_id(package_id, "a package id"));
  if (receipt.receipt_sha256.size() != kSha256Size)
    return fail(Code::InvalidArgument, "receipt_sha256 is a SHA-256 digest, 32 bytes");
  const std::string id(package_id);
  std::vector<sql::Value> params{id, receipt.receipt_sha256};
  registry::append_clock(params, receipt.clock);
  params.emplace_back(registry::to_db(receipt.received));
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Status {
    auto rows = MCIMD_TRY(c.run("UPDATE packages SET state = 'installed', receipt_sha256 = $2, receipt_clock = $3, "
                                "receipt_reset_count = $4, receipt_restart_count = $5, receipt_safe = $6, received = $7 "
                                "WHERE package_id = $1 AND state = 'issued' RETURNING package_id",
                                params));
    if (!rows.empty()) return {};
    return explain_not_issued(c, id, "installed");
  });
}

Status Registry::mark_failed(std::string_view package_id, std::string_view reason, Timestamp now) const {
  MCIMD_CHECK(registry::check_id(package_id, "a package id"));
  MCIMD_CHECK(registry::check_line(reason, kMaxFailureSize, "a failure reason", /*allow_empty=*/false));
  const std::string id(package_id);
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Status {
    auto rows = MCIMD_TRY(c.run("UPDATE packages SET state = 'failed', failure = $2, failed = $3 "
                                "WHERE package_id = $1 AND state = 'issued' RETURNING package_id",
                                {id, std::string(reason), registry::to_db(now)}));
    if (!rows.empty()) return {};
    return explain_not_issued(c, id, "failed");
  });
}

Result<std::optional<PackageRecord>> Registry::find_package(std::string_view package_id) const {
  MCIMD_CHECK(registry::check_id(package_id, "a package id"));
  const std::string id(package_id);
  return query(*impl_, [&](sql::Connection& c) -> Result<std::optional<PackageRecord>> {
    auto rows =
        MCIMD_TRY(c.run("SELECT " + std::string(kPackageColumns) + " FROM packages WHERE package_id = $1", {id}));
    if (rows.empty()) return std::optional<PackageRecord>();
    return std::optional<PackageRecord>(MCIMD_TRY(decode_package(rows[0])));
  });
}

Result<std::vector<PackageRecord>> Registry::packages_of(std::span<const uint8_t> ak_name) const {
  const std::string key = MCIMD_TRY(device_key(ak_name));
  return query(*impl_, [&](sql::Connection& c) -> Result<std::vector<PackageRecord>> {
    MCIMD_CHECK(registry::require_device(c, key));
    auto rows = MCIMD_TRY(c.run(
        "SELECT " + std::string(kPackageColumns) + " FROM packages WHERE device = $1 ORDER BY counter", {key}));
    std::vector<PackageRecord> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(MCIMD_TRY(decode_package(row)));
    return out;
  });
}

}  // namespace mcimd::op
