// The state directories of earlier mcim-operator releases kept one JSON file per device
// (DIR/devices/<id>.json). Opening such a directory imports them into DIR/registry.db once.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "operator/registry_impl.hpp"
#include "protocol/evidence.hpp"
#include "protocol/quote.hpp"

namespace mcimd::op {

namespace {

using json = nlohmann::json;
using registry::kSha256Size;

constexpr std::string_view kRecordFormat = "mcim-operator-device-1";
constexpr std::string_view kDevicesDir = "devices";
constexpr std::string_view kImportedDir = "devices.imported";
constexpr std::size_t kMaxRecordSize = 1u << 20;

std::string b64(std::span<const uint8_t> data) { return base64url_encode(data); }

// Reads one record field; every error names the file's field.
struct FieldReader {
  const json& j;

  Result<const json*> get(const char* key, bool required) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) return fail(Code::StoreCorrupt, std::string("device record lacks \"") + key + "\"");
      return nullptr;
    }
    return &*it;
  }
  Result<Bytes> binary(const char* key) const {
    const json* v = MCIMD_TRY(get(key, true));
    if (!v->is_string()) return fail(Code::StoreCorrupt, std::string("device record \"") + key + "\" is not a string");
    auto bytes = base64url_decode(v->get<std::string>(), key);
    if (!bytes) return fail(Code::StoreCorrupt, "device record: " + bytes.error().message);
    return *bytes;
  }
  Result<std::optional<Bytes>> optional_binary(const char* key) const {
    const json* v = MCIMD_TRY(get(key, false));
    if (!v) return std::optional<Bytes>();
    return std::optional<Bytes>(MCIMD_TRY(binary(key)));
  }
};

Result<attestation::ClockInfo> clock_from_json(const json& j) {
  if (!j.is_object()) return fail(Code::StoreCorrupt, "device record \"last_clock\" is not an object");
  attestation::ClockInfo clock;
  try {
    clock.clock = j.at("clock").get<uint64_t>();
    clock.reset_count = j.at("reset_count").get<uint32_t>();
    clock.restart_count = j.at("restart_count").get<uint32_t>();
    clock.safe = j.at("safe").get<bool>();
  } catch (const json::exception& e) {
    return fail(Code::StoreCorrupt, std::string("device record \"last_clock\": ") + e.what());
  }
  return clock;
}

}  // namespace

std::string to_json(const DeviceRecord& r) {
  json j;
  j["format"] = kRecordFormat;
  j["device"] = device_id(r.ak_name);
  j["ak_public"] = b64(r.ak_public);
  j["ek_public"] = b64(r.ek_public);
  if (r.ek_certificate) j["ek_certificate"] = b64(*r.ek_certificate);
  j["enrolled"] = r.enrolled;
  if (r.uncertified_ek) j["uncertified_ek"] = true;
  if (r.pending_secret_sha256) j["pending_secret_sha256"] = b64(*r.pending_secret_sha256);
  if (r.last_clock) {
    j["last_clock"] = {{"clock", r.last_clock->clock},
                       {"reset_count", r.last_clock->reset_count},
                       {"restart_count", r.last_clock->restart_count},
                       {"safe", r.last_clock->safe}};
  }
  return j.dump(2) + "\n";
}

Result<DeviceRecord> device_record_from_json(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return fail(Code::StoreCorrupt, "device record is not a JSON object");
  FieldReader r{j};
  const json* format = MCIMD_TRY(r.get("format", true));
  if (*format != kRecordFormat) return fail(Code::StoreCorrupt, "device record format is not mcim-operator-device-1");
  for (const auto& [key, value] : j.items()) {
    static const char* const kKnown[] = {"format",         "device",   "ak_public",
                                         "ek_public",      "ek_certificate", "enrolled",
                                         "uncertified_ek", "pending_secret_sha256", "last_clock"};
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown))
      return fail(Code::StoreCorrupt, "device record has unknown field \"" + key + "\"");
  }
  DeviceRecord out;
  out.ak_public = MCIMD_TRY(r.binary("ak_public"));
  out.ek_public = MCIMD_TRY(r.binary("ek_public"));
  out.ek_certificate = MCIMD_TRY(r.optional_binary("ek_certificate"));
  out.pending_secret_sha256 = MCIMD_TRY(r.optional_binary("pending_secret_sha256"));
  if (out.pending_secret_sha256 && out.pending_secret_sha256->size() != kSha256Size)
    return fail(Code::StoreCorrupt, "device record \"pending_secret_sha256\" is not a SHA-256 digest");
  const json* enrolled = MCIMD_TRY(r.get("enrolled", true));
  if (!enrolled->is_boolean()) return fail(Code::StoreCorrupt, "device record \"enrolled\" is not true or false");
  out.enrolled = enrolled->get<bool>();
  // Records written before the flag existed: an EK enrolled without a certificate is uncertified.
  out.uncertified_ek = !out.ek_certificate;
  if (const json* uncertified = MCIMD_TRY(r.get("uncertified_ek", false))) {
    if (!uncertified->is_boolean() || uncertified->get<bool>() != out.uncertified_ek)
      return fail(Code::StoreCorrupt, "device record \"uncertified_ek\" contradicts its EK certificate");
  }
  if (const json* clock = MCIMD_TRY(r.get("last_clock", false))) out.last_clock = MCIMD_TRY(clock_from_json(*clock));

  // The name is derived, never trusted from the file: a record renamed or edited by hand to
  // claim another device's id is refused.
  auto name = protocol::object_name(out.ak_public);
  if (!name) return fail(Code::StoreCorrupt, "device record \"ak_public\": " + name.error().message);
  out.ak_name = std::move(*name);
  const json* id = MCIMD_TRY(r.get("device", true));
  if (*id != device_id(out.ak_name)) return fail(Code::StoreCorrupt, "device record id does not match its AK");
  return out;
}

namespace {

// Imports every DIR/devices/*.json not in the database yet, then renames the folder so the
// next open does not read it again. A record the database has already stays as it is: it may
// have changed since the import began in another process.
Status import_device_files(const Registry& registry, const std::filesystem::path& dir) {
  const auto devices = dir / kDevicesDir;
  std::error_code ec;
  if (!std::filesystem::is_directory(devices, ec)) return {};
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(devices, ec)) {
    const auto& p = entry.path();
    if (p.extension() == ".json" && entry.is_regular_file()) files.push_back(p);
  }
  if (ec) return fail(Code::IoError, "list " + devices.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    auto text = MCIMD_TRY(read_text_file(p, kMaxRecordSize));
    auto record = device_record_from_json(text);
    if (!record) return fail(Code::StoreCorrupt, p.string() + ": " + record.error().message);
    if (p.filename() != device_id(record->ak_name) + ".json")
      return fail(Code::StoreCorrupt, p.string() + ": the record is for another device");
    if (MCIMD_TRY(registry.find(record->ak_name))) continue;
    auto stored = registry.store(*record);
    // Busy: another process stored the device meanwhile, and its record wins.
    if (!stored && !(stored.error().code == Code::Busy && MCIMD_TRY(registry.find(record->ak_name))))
      return tl::unexpected(std::move(stored).error());
  }
  const auto imported = dir / kImportedDir;
  if (std::rename(devices.c_str(), imported.c_str()) != 0) {
    // Another process renamed it first, or an earlier import left devices.imported: the records
    // are in the database either way.
    if (errno == ENOENT || errno == EEXIST || errno == ENOTEMPTY) return {};
    return fail_errno("Failed to rename " + devices.string() + " after importing it", errno);
  }
  return fsync_dir(dir);
}

}  // namespace

Result<Registry> Registry::open_state_dir(const std::filesystem::path& dir, bool create) {
  if (dir.empty()) return fail(Code::InvalidArgument, "state directory is empty");
  std::error_code ec;
  if (!create && !std::filesystem::is_directory(dir, ec))
    return fail(Code::NotFound, dir.string() + " is not a state directory (enrol a device first)");
  MCIMD_CHECK(make_private_dir(dir));
  auto registry = MCIMD_TRY(open(state_dir_connection(dir)));
  MCIMD_CHECK(import_device_files(registry, dir));
  return registry;
}

}  // namespace mcimd::op
