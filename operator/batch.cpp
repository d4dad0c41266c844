#include "operator/batch.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "attestation/verifier_tpm.hpp"
#include "common/file.hpp"
#include "operator/validation.hpp"
#include "protocol/provisioning.hpp"
#include "protocol/quote.hpp"

namespace mcimd::op {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kNoDevice = "-";
constexpr std::size_t kIdTagDigits = 32;  // 128 bits of SHA-256(job, record): no two records share one
constexpr std::size_t kMaxEkFileSize = 4096;

Timestamp now_seconds() { return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()); }

std::span<const uint8_t> as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Which processes work on a job: each holds a shared flock on out_dir/.batch-<job>.lock while it
// runs. Whoever gets it exclusively is alone, so items left running belong to a dead run.
class JobLock {
 public:
  static Result<JobLock> take(const std::filesystem::path& out_dir, std::string_view job, bool& alone) {
    const auto path = out_dir / (".batch-" + std::string(job) + ".lock");
    JobLock lock(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (lock.fd_ < 0) return fail(Code::IoError, "cannot open " + path.string() + ": " + std::strerror(errno));
    alone = ::flock(lock.fd_, LOCK_EX | LOCK_NB) == 0;
    // Downgrading lets the next process in see that this one runs; while exclusive nobody else could start.
    if (::flock(lock.fd_, LOCK_SH) != 0)
      return fail(Code::IoError, "cannot lock " + path.string() + ": " + std::strerror(errno));
    return lock;
  }
  JobLock(JobLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  JobLock& operator=(JobLock&&) = delete;
  ~JobLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit JobLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

struct Outcome {
  BatchStatus status = BatchStatus::Done;
  std::string line;
};

// Everything a worker needs, shared read-only (the registry is thread-safe).
struct Context {
  const Registry& registry;
  const PolicySigner& signer;
  const BatchOptions& options;
  std::set<std::string> retried;  // records a dead run left running
};

std::string sanitized(std::string_view message) {
  std::string out(message);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

std::string id_tag(std::string_view job, std::string_view key) {
  std::string input(job);
  input.push_back('\n');
  input.append(key);
  auto digest = attestation::hash(attestation::alg::kSha256, as_bytes(input));
  return digest ? to_hex(*digest).substr(0, kIdTagDigits) : std::string();
}

Result<protocol::PackageRequest> read_request(const EnrolmentRecord& record) {
  auto text = read_text_file(record.request_path, protocol::kMaxDocumentSize);
  if (!text) return fail(text.error().code, record.request + ": " + text.error().message);
  auto request = protocol::package_request_from_json(*text);
  if (!request) return fail(request.error().code, record.request + ": " + request.error().message);
  return request;
}

// The device as the registry has it, registered now if it was not (the factory vouches for it).
Result<DeviceRecord> register_device(const Registry& registry, const EnrolmentRecord& record,
                                     const protocol::PackageRequest& request, std::span<const uint8_t> ak_name) {
  std::optional<Bytes> ek_public, ek_certificate;
  if (record.ek_public) {
    ek_public = MCIMD_TRY(read_file(*record.ek_public, kMaxEkFileSize));
    if (auto ek = attestation::parse_tpm_public(*ek_public); !ek)
      return fail(Code::InvalidArgument, record.ek_public->string() + ": " + ek.error().message);
  }
  if (record.ek_certificate) ek_certificate = MCIMD_TRY(read_file(*record.ek_certificate, kMaxEkFileSize));

  for (int attempt = 0;; ++attempt) {
    auto found = MCIMD_TRY(registry.find(ak_name));
    DeviceRecord device;
    if (found) {
      device = std::move(*found);
      if (ek_public && !device.ek_public.empty() && device.ek_public != *ek_public)
        return fail(Code::WrongDevice, "device " + request.device + " is registered with another EK");
      if (device.enrolled && (!ek_public || !device.ek_public.empty())) return device;
    } else {
      auto evidence_ak = MCIMD_TRY(protocol::object_name(request.evidence.ak_public));
      if (!std::ranges::equal(evidence_ak, ak_name))
        return fail(Code::WrongDevice, "the request names device " + request.device +
                                           ", its evidence is signed by device " + device_id(evidence_ak));
      device.ak_name.assign(ak_name.begin(), ak_name.end());
      device.ak_public = request.evidence.ak_public;
    }
    if (ek_public && device.ek_public.empty()) {
      device.ek_public = *ek_public;
      device.ek_certificate = ek_certificate;
    }
    device.uncertified_ek = !device.ek_certificate;
    device.enrolled = true;
    device.pending_secret_sha256.reset();
    auto stored = registry.store(device);
    if (stored) return device;
    if (stored.error().code != Code::Busy || attempt >= 3) return tl::make_unexpected(stored.error());
  }
}

// Remote validation over the factory's nonce; see run_batch for the one exception it makes.
Status validate_platform(const Context& ctx, const EnrolmentRecord& record, const protocol::PackageRequest& request,
                         const DeviceRecord& device) {
  DeviceVerifyOptions vo;
  vo.nonce = request.operator_nonce;
  vo.policy = ctx.options.policy;
  auto verification = MCIMD_TRY(verify_device(ctx.registry, request.evidence, vo));
  if (verification.result.ok) return {};
  const auto& checks = verification.result.checks;
  const bool only_clock = std::all_of(checks.begin(), checks.end(), [](const attestation::Check& c) {
    return c.passed || c.name == "quote.clock";
  });
  // An interrupted run of this job accepted this very quote (and stored its clock) but died before
  // finishing the record: the same evidence, for the same record, is not a replay.
  if (only_clock && ctx.retried.contains(record.request) && device.last_clock &&
      device.last_clock == verification.result.clock)
    return {};
  return fail(Code::NotAuthorized, "platform validation refused: " + verification.result.failures());
}

Result<McimCredentials> subscription_for(const Context& ctx, const EnrolmentRecord& record,
                                         std::span<const uint8_t> ak_name, const std::string& tag, Timestamp now) {
  const auto& o = ctx.options;
  if (record.subscription) {
    auto sub = MCIMD_TRY(ctx.registry.find_subscription(*record.subscription));
    if (!sub) return fail(Code::NotFound, "no subscription " + *record.subscription);
    MCIMD_CHECK(ctx.registry.link_subscription(ak_name, sub->id, now));
    return read_auc_record(o.auc_dir, *sub);
  }
  // The id is the record's, so a record redone after a crash finds the subscription it made.
  const std::string id = "bs-" + tag;
  auto sub = MCIMD_TRY(ctx.registry.find_subscription(id));
  std::optional<McimCredentials> mcim;
  if (sub) {
    auto existing = read_auc_record(o.auc_dir, *sub);
    if (existing) mcim = std::move(*existing);
    else if (existing.error().code != Code::NotFound) return tl::make_unexpected(existing.error());
  } else {
    sub = MCIMD_TRY(create_random_subscription(ctx.registry, o.numbering, now, id));
  }
  if (!mcim) mcim = MCIMD_TRY(new_auc_record(o.auc_dir, *sub));
  MCIMD_CHECK(ctx.registry.link_subscription(ak_name, sub->id, now));
  return std::move(*mcim);
}

// A package this job recorded for the record before a crash: its line, if its file is intact.
Result<std::optional<std::string>> already_issued(const Context& ctx, const std::string& package_id,
                                                  const std::string& device, const std::filesystem::path& file) {
  auto recorded = MCIMD_TRY(ctx.registry.find_package(package_id));
  if (!recorded) return std::optional<std::string>();
  auto text = read_file(file, protocol::kMaxPackageSize);
  auto digest = text ? attestation::hash(attestation::alg::kSha256, *text) : Result<Bytes>(Bytes());
  if (!digest || *digest != recorded->spec.package_sha256)
    return fail(Code::InvalidState, "package " + package_id + " was recorded, but " + file.string() +
                                        " is missing or is another package");
  return std::optional<std::string>(result_ok_line(device, package_id, recorded->spec.iccid, file));
}

Result<std::string> provision(const Context& ctx, const EnrolmentRecord& record, std::string& device) {
  const auto& o = ctx.options;
  const auto request = MCIMD_TRY(read_request(record));
  const Bytes ak_name = MCIMD_TRY(from_hex(request.device, "device"));
  device = request.device;
  const std::string tag = id_tag(o.job, record.request);
  if (tag.empty()) return fail(Code::Internal, "SHA-256 failed");
  const std::string package_id = "bp-" + tag;
  const auto file = o.out_dir / (request.device + ".jws");
  if (auto done = MCIMD_TRY(already_issued(ctx, package_id, device, file))) return *done;

  const auto registered = MCIMD_TRY(register_device(ctx.registry, record, request, ak_name));
  MCIMD_CHECK(check_package_request(request, registered.ak_public, request.operator_nonce));
  MCIMD_CHECK(validate_platform(ctx, record, request, registered));

  const Timestamp now = now_seconds();
  auto mcim = MCIMD_TRY(subscription_for(ctx, record, ak_name, tag, now));
  mcim.rules.locked_until = o.locked_until;
  const PackageIssue issue{package_id, o.operator_id, now, o.package_lifetime};
  const auto built = MCIMD_TRY(make_package(ctx.registry, request, ak_name, mcim, issue, ctx.signer));
  // Packages carry no secret in the clear (the import blobs open only in the device's TPM).
  MCIMD_CHECK(write_file_atomic(file, built.jws, {0644}));
  MCIMD_CHECK(record_issued_package(ctx.registry, ak_name, built, mcim));
  return result_ok_line(device, package_id, mcim.iccid, file);
}

Outcome work_on(const Context& ctx, const EnrolmentRecord& record) {
  std::string device(kNoDevice);
  auto line = provision(ctx, record, device);
  if (line) return {BatchStatus::Done, std::move(*line)};
  return {BatchStatus::Failed, result_error_line(device, line.error())};
}

std::string unfinished_line(const BatchItem* item) {
  return result_error_line(kNoDevice,
                           Error{Code::InvalidState,
                                 std::string("not finished (") +
                                     std::string(item ? batch_status_name(item->status) : "not added") +
                                     "): run the job again",
                                 {}});
}

}  // namespace

std::string format_progress(const BatchProgress& p) {
  char buf[160];
  const double seconds = p.elapsed.count();
  const double rate = seconds > 0 ? static_cast<double>(p.done_now) / seconds : 0.0;
  std::string eta = "-";
  if (rate > 0 && p.done < p.total) {
    const auto left = static_cast<long long>(std::ceil(static_cast<double>(p.total - p.done) / rate));
    std::snprintf(buf, sizeof buf, "%lld:%02lld", left / 60, left % 60);
    eta = buf;
  }
  std::snprintf(buf, sizeof buf, "%zu/%zu done (%zu failed), %.1f/s, ETA %s", p.done, p.total, p.failed, rate,
                eta.c_str());
  return buf;
}

std::string result_ok_line(std::string_view device, std::string_view package_id, std::string_view iccid,
                           const std::filesystem::path& package) {
  return std::string(device) + " ok " + std::string(package_id) + " " + std::string(iccid) + " " +
         sanitized(package.string());
}

std::string result_error_line(std::string_view device, const Error& error) {
  std::string line = std::string(device) + " error " + std::string(code_name(error.code)) + " " +
                     sanitized(error.message);
  if (line.size() > kMaxBatchResultSize) line.resize(kMaxBatchResultSize);
  return line;
}

Result<BatchReport> run_batch(const Registry& registry, const std::vector<EnrolmentRecord>& records,
                              const PolicySigner& signer, const BatchOptions& options) {
  MCIMD_CHECK(make_private_dir(options.out_dir));
  bool alone = false;
  auto lock = MCIMD_TRY(JobLock::take(options.out_dir, options.job, alone));

  Context ctx{registry, signer, options, {}};
  std::map<std::string, const EnrolmentRecord*> by_key;
  std::vector<std::string> keys;
  for (const auto& r : records) {
    by_key[r.request] = &r;
    keys.push_back(r.request);
  }
  for (const auto& item : MCIMD_TRY(registry.batch_items(options.job))) {
    if (!by_key.contains(item.key))
      return fail(Code::InvalidArgument, "batch job " + options.job + " has a record this input lacks (" + item.key +
                                             "): a job is one input; name another job with --job");
    if (alone && item.status == BatchStatus::Running) ctx.retried.insert(item.key);
  }
  if (alone) MCIMD_CHECK(registry.requeue_batch_items(options.job, now_seconds()));
  MCIMD_CHECK(registry.add_batch_items(options.job, keys, now_seconds()));

  BatchProgress progress;
  progress.total = records.size();
  for (const auto& item : MCIMD_TRY(registry.batch_items(options.job))) {
    if (item.status == BatchStatus::Done || item.status == BatchStatus::Failed) ++progress.done;
    if (item.status == BatchStatus::Failed) ++progress.failed;
  }
  std::atomic<std::size_t> done_now{0}, failed_now{0};
  std::mutex stop_mutex;
  std::optional<Error> stopped;
  auto stop_with = [&](const Error& e) {
    std::lock_guard guard(stop_mutex);
    if (!stopped) stopped = e;
  };
  auto worker = [&] {
    for (;;) {
      {
        std::lock_guard guard(stop_mutex);
        if (stopped) return;
      }
      auto key = registry.claim_batch_item(options.job, now_seconds());
      if (!key) return stop_with(key.error());
      if (!*key) return;
      const Outcome outcome = work_on(ctx, *by_key.at(**key));
      auto finished = registry.finish_batch_item(BatchOutcome{options.job, **key, outcome.status, outcome.line, now_seconds()});
      if (!finished) return stop_with(finished.error());
      if (outcome.status == BatchStatus::Failed) ++failed_now;
      ++done_now;
    }
  };

  const auto started = Clock::now();
  auto snapshot = [&] {
    BatchProgress p = progress;
    p.done_now = done_now.load();
    p.done += p.done_now;
    p.failed += failed_now.load();
    p.elapsed = Clock::now() - started;
    return p;
  };
  {
    const unsigned n = std::max(1u, options.workers);
    unsigned running = n;
    std::mutex running_mutex;
    std::condition_variable all_stopped;
    std::vector<std::jthread> threads;
    for (unsigned i = 0; i < n; ++i)
      threads.emplace_back([&] {
        worker();
        std::lock_guard guard(running_mutex);
        if (--running == 0) all_stopped.notify_all();
      });
    std::unique_lock wait(running_mutex);
    while (!all_stopped.wait_for(wait, options.progress_interval, [&] { return running == 0; })) {
      wait.unlock();
      if (options.progress) options.progress(snapshot(), false);
      wait.lock();
    }
  }  // the threads join here
  if (options.progress) options.progress(snapshot(), true);

  BatchReport report;
  report.stopped = stopped;
  std::map<std::string, BatchItem> items;
  for (auto& item : MCIMD_TRY(registry.batch_items(options.job))) items.emplace(item.key, std::move(item));
  for (const auto& r : records) {
    auto it = items.find(r.request);
    const BatchItem* item = it == items.end() ? nullptr : &it->second;
    if (item && item->status == BatchStatus::Done) {
      ++report.ok;
      report.lines.push_back(item->result);
    } else if (item && item->status == BatchStatus::Failed) {
      ++report.failed;
      report.lines.push_back(item->result);
    } else {
      ++report.unfinished;
      report.lines.push_back(unfinished_line(item));
    }
  }
  return report;
}

}  // namespace mcimd::op
