// Batch jobs: items worked on once each, by any number of workers, resumable after a crash.
#include "operator/registry_impl.hpp"

namespace mcimd::op {

namespace {

using registry::query;
using registry::transaction;

// Claims lost to a concurrent worker before one succeeds or none is pending; each lost claim
// means another worker progressed, so running out needs that many items claimed meanwhile.
constexpr int kMaxClaimAttempts = 1000;

std::optional<BatchStatus> batch_status_from_name(std::string_view name) {
  for (auto s : {BatchStatus::Pending, BatchStatus::Running, BatchStatus::Done, BatchStatus::Failed})
    if (batch_status_name(s) == name) return s;
  return std::nullopt;
}

Status check_key(std::string_view key) {
  return registry::check_line(key, kMaxBatchKeySize, "a batch item key", /*allow_empty=*/false);
}

}  // namespace

std::string_view batch_status_name(BatchStatus status) {
  switch (status) {
    case BatchStatus::Pending: return "pending";
    case BatchStatus::Running: return "running";
    case BatchStatus::Done: return "done";
    case BatchStatus::Failed: return "failed";
  }
  return "pending";
}

Result<std::size_t> Registry::add_batch_items(std::string_view job, std::span<const std::string> keys,
                                              Timestamp now) const {
  MCIMD_CHECK(registry::check_id(job, "a batch job id"));
  for (const auto& key : keys) MCIMD_CHECK(check_key(key));
  const std::string name(job);
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Result<std::size_t> {
    std::size_t added = 0;
    for (const auto& key : keys) {
      // Not MCIMD_TRY: g++ 12 at -O3 takes the rows moved out of its statement expression for
      // freed memory (a false -Wuse-after-free).
      auto rows = c.run("INSERT INTO batch_items (job, item, status, result, updated) "
                        "VALUES ($1, $2, 'pending', '', $3) ON CONFLICT (job, item) DO NOTHING RETURNING item",
                        {name, key, registry::to_db(now)});
      if (!rows) return tl::unexpected(rows.error());
      added += rows->size();
    }
    return added;
  });
}

Result<std::optional<std::string>> Registry::claim_batch_item(std::string_view job, Timestamp now) const {
  MCIMD_CHECK(registry::check_id(job, "a batch job id"));
  const std::string name(job);
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Result<std::optional<std::string>> {
    for (int attempt = 0; attempt < kMaxClaimAttempts; ++attempt) {
      // "status = 'pending'" is checked again on the row the UPDATE locks: PostgreSQL re-reads a
      // row another transaction changed meanwhile, so two workers that picked the same item
      // cannot both claim it; the loser tries the next one.
      auto rows = MCIMD_TRY(c.run("UPDATE batch_items SET status = 'running', updated = $2 "
                                  "WHERE job = $1 AND status = 'pending' AND item = "
                                  "(SELECT item FROM batch_items WHERE job = $1 AND status = 'pending' "
                                  "ORDER BY item LIMIT 1) RETURNING item",
                                  {name, registry::to_db(now)}));
      if (!rows.empty()) return std::optional<std::string>(MCIMD_TRY(rows[0].text(0)));
      auto pending = MCIMD_TRY(c.run("SELECT 1 FROM batch_items WHERE job = $1 AND status = 'pending' LIMIT 1", {name}));
      if (pending.empty()) return std::optional<std::string>();
    }
    return fail(Code::Busy, "batch job " + name + ": every claim was taken by another worker; try again");
  });
}

Status Registry::finish_batch_item(const BatchOutcome& outcome) const {
  MCIMD_CHECK(registry::check_id(outcome.job, "a batch job id"));
  MCIMD_CHECK(check_key(outcome.key));
  if (outcome.status != BatchStatus::Done && outcome.status != BatchStatus::Failed)
    return fail(Code::InvalidArgument, "a batch item finishes done or failed");
  MCIMD_CHECK(registry::check_line(outcome.result, kMaxBatchResultSize, "a batch result", /*allow_empty=*/true));
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Status {
    auto rows = MCIMD_TRY(c.run("UPDATE batch_items SET status = $3, result = $4, updated = $5 "
                                "WHERE job = $1 AND item = $2 AND status = 'running' RETURNING item",
                                {outcome.job, outcome.key, std::string(batch_status_name(outcome.status)),
                                 outcome.result, registry::to_db(outcome.now)}));
    if (!rows.empty()) return {};
    auto state = MCIMD_TRY(c.run("SELECT status FROM batch_items WHERE job = $1 AND item = $2", {outcome.job, outcome.key}));
    if (state.empty()) return fail(Code::NotFound, "batch job " + outcome.job + " has no item " + outcome.key);
    return fail(Code::InvalidState, "batch item " + outcome.key + " of job " + outcome.job + " is " +
                                        MCIMD_TRY(state[0].text(0)) + ", not running");
  });
}

Result<std::size_t> Registry::requeue_batch_items(std::string_view job, Timestamp now) const {
  MCIMD_CHECK(registry::check_id(job, "a batch job id"));
  const std::string name(job);
  return transaction(*impl_, sql::Access::Write, [&](sql::Connection& c) -> Result<std::size_t> {
    auto rows = MCIMD_TRY(c.run("UPDATE batch_items SET status = 'pending', updated = $2 "
                                "WHERE job = $1 AND status = 'running' RETURNING item",
                                {name, registry::to_db(now)}));
    return rows.size();
  });
}

Result<std::vector<BatchItem>> Registry::batch_items(std::string_view job) const {
  MCIMD_CHECK(registry::check_id(job, "a batch job id"));
  const std::string name(job);
  return query(*impl_, [&](sql::Connection& c) -> Result<std::vector<BatchItem>> {
    auto rows = MCIMD_TRY(c.run("SELECT item, status, result, updated FROM batch_items WHERE job = $1 ORDER BY item",
                                {name}));
    std::vector<BatchItem> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      BatchItem item;
      item.job = name;
      item.key = MCIMD_TRY(row.text(0));
      const std::string status = MCIMD_TRY(row.text(1));
      const auto parsed = batch_status_from_name(status);
      if (!parsed) return fail(Code::StoreCorrupt, "registry batch item " + item.key + " has status " + status);
      item.status = *parsed;
      item.result = MCIMD_TRY(row.text(2));
      item.updated = registry::timestamp_from_db(MCIMD_TRY(row.integer(3)));
      out.push_back(std::move(item));
    }
    return out;
  });
}

}  // namespace mcimd::op
