#include "attestation/eventlog.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "attestation/verifier_tpm.hpp"

namespace mcimd::attestation {

namespace {

struct TypeName {
  uint32_t type;
  const char* name;
};
// TCG PC Client PFP §10.4.1 Table 9.
constexpr std::array kEventTypes{
    TypeName{0x00000000, "EV_PREBOOT_CERT"},
    TypeName{0x00000001, "EV_POST_CODE"},
    TypeName{0x00000002, "EV_UNUSED"},
    TypeName{0x00000003, "EV_NO_ACTION"},
    TypeName{0x00000004, "EV_SEPARATOR"},
    TypeName{0x00000005, "EV_ACTION"},
    TypeName{0x00000006, "EV_EVENT_TAG"},
    TypeName{0x00000007, "EV_S_CRTM_CONTENTS"},
    TypeName{0x00000008, "EV_S_CRTM_VERSION"},
    TypeName{0x00000009, "EV_CPU_MICROCODE"},
    TypeName{0x0000000A, "EV_PLATFORM_CONFIG_FLAGS"},
    TypeName{0x0000000B, "EV_TABLE_OF_DEVICES"},
    TypeName{0x0000000C, "EV_COMPACT_HASH"},
    TypeName{0x0000000D, "EV_IPL"},
    TypeName{0x0000000E, "EV_IPL_PARTITION_DATA"},
    TypeName{0x0000000F, "EV_NONHOST_CODE"},
    TypeName{0x00000010, "EV_NONHOST_CONFIG"},
    TypeName{0x00000011, "EV_NONHOST_INFO"},
    TypeName{0x00000012, "EV_OMIT_BOOT_DEVICE_EVENTS"},
    TypeName{0x00000013, "EV_POST_CODE2"},
    TypeName{0x80000000, "EV_EFI_EVENT_BASE"},
    TypeName{0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
    TypeName{0x80000002, "EV_EFI_VARIABLE_BOOT"},
    TypeName{0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION"},
    TypeName{0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER"},
    TypeName{0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
    TypeName{0x80000006, "EV_EFI_GPT_EVENT"},
    TypeName{0x80000007, "EV_EFI_ACTION"},
    TypeName{0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
    TypeName{0x80000009, "EV_EFI_HANDOFF_TABLES"},
    TypeName{0x8000000A, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
    TypeName{0x8000000B, "EV_EFI_HANDOFF_TABLES2"},
    TypeName{0x8000000C, "EV_EFI_VARIABLE_BOOT2"},
    TypeName{0x80000010, "EV_EFI_HCRTM_EVENT"},
    TypeName{0x800000E0, "EV_EFI_VARIABLE_AUTHORITY"},
    TypeName{0x800000E1, "EV_EFI_SPDM_FIRMWARE_BLOB"},
    TypeName{0x800000E2, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
};

// PFP §10.4.5.1 TCG_EfiSpecIDEventStruct.signature and §10.4.5.3 StartupLocality signature.
constexpr char kSpecId03[16] = "Spec ID Event03";
constexpr char kStartupLocality[16] = "StartupLocality";
constexpr unsigned kMaxPcr = 23;  // PC Client TPMs have PCR 0..23

// Little-endian reader that never reads past its span and reports where it failed.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}
  std::size_t offset() const { return off_; }
  std::size_t remaining() const { return data_.size() - off_; }
  bool u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = data_[off_++];
    return true;
  }
  bool u16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = uint16_t(data_[off_] | (data_[off_ + 1] << 8));
    off_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = uint32_t(data_[off_]) | uint32_t(data_[off_ + 1]) << 8 | uint32_t(data_[off_ + 2]) << 16 |
        uint32_t(data_[off_ + 3]) << 24;
    off_ += 4;
    return true;
  }
  bool bytes(std::size_t n, Bytes& out) {
    if (remaining() < n) return false;
    out.assign(data_.begin() + static_cast<std::ptrdiff_t>(off_), data_.begin() + static_cast<std::ptrdiff_t>(off_ + n));
    off_ += n;
    return true;
  }

 private:
  std::span<const uint8_t> data_;
  std::size_t off_ = 0;
};

tl::unexpected<Error> log_error(const char* reason, std::size_t event, std::size_t offset, const std::string& detail) {
  return fail(Code::InvalidArgument, std::string(reason) + ": event log event " + std::to_string(event) +
                                         " at offset " + std::to_string(offset) + ": " + detail);
}

Result<void> parse_spec_id(const Bytes& data, EventLog& log, const EventLogLimits& limits) {
  Reader r(data);
  Bytes signature;
  uint32_t platform_class = 0, count = 0;
  uint8_t minor = 0, major = 0, errata = 0, uintn = 0;
  if (!r.bytes(16, signature) || std::memcmp(signature.data(), kSpecId03, 16) != 0)
    return log_error("bad_header", 0, 32, "not a crypto-agile log (no \"Spec ID Event03\" signature)");
  if (!r.u32(platform_class) || !r.u8(minor) || !r.u8(major) || !r.u8(errata) || !r.u8(uintn) || !r.u32(count))
    return log_error("truncated", 0, 32 + r.offset(), "Spec ID header cut short");
  if (major != 2) return log_error("bad_header", 0, 32, "spec version " + std::to_string(major) + " is not 2");
  if (count == 0 || count > limits.max_algorithms)
    return log_error("bad_header", 0, 32, std::to_string(count) + " algorithms declared");
  log.spec_errata = errata;
  for (uint32_t i = 0; i < count; ++i) {
    uint16_t alg_id = 0, size = 0;
    if (!r.u16(alg_id) || !r.u16(size)) return log_error("truncated", 0, 32 + r.offset(), "algorithm list cut short");
    std::size_t known = hash_size(alg_id);
    if ((known && known != size) || size == 0 || size > 64)
      return log_error("bad_header", 0, 32 + r.offset(), "digest size " + std::to_string(size) + " for algorithm " +
                                                              std::to_string(alg_id));
    for (auto& [a, s] : log.algorithms)
      if (a == alg_id) return log_error("bad_header", 0, 32 + r.offset(), "algorithm declared twice");
    log.algorithms.emplace_back(alg_id, size);
  }
  uint8_t vendor_size = 0;
  Bytes vendor;
  if (!r.u8(vendor_size) || !r.bytes(vendor_size, vendor))
    return log_error("truncated", 0, 32 + r.offset(), "vendor info cut short");
  if (r.remaining() != 0) return log_error("bad_header", 0, 32 + r.offset(), "trailing bytes in Spec ID event");
  return {};
}

void extend(uint16_t alg_id, Bytes& pcr, const Bytes& digest) {
  Bytes input = pcr;
  input.insert(input.end(), digest.begin(), digest.end());
  pcr = *hash(alg_id, input);  // alg_id is a known hash: cannot fail
}

bool parse_hex(std::string_view text, Bytes& out) {
  auto r = from_hex(text, "hex");
  if (!r) return false;
  out = std::move(*r);
  return true;
}

void put_le32(Bytes& out, std::size_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

}  // namespace

std::string event_type_name(uint32_t type) {
  for (const auto& t : kEventTypes)
    if (t.type == type) return t.name;
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", type);
  return buf;
}

std::optional<uint32_t> event_type_from_name(std::string_view name) {
  for (const auto& t : kEventTypes)
    if (name == t.name) return t.type;
  return std::nullopt;
}

const Bytes* Event::digest(uint16_t hash_alg) const {
  for (const auto& d : digests)
    if (d.hash_alg == hash_alg) return &d.digest;
  return nullptr;
}

Result<EventLog> parse_event_log(std::span<const uint8_t> data, const EventLogLimits& limits) {
  if (data.size() > limits.max_log_size)
    return log_error("too_large", 0, 0, std::to_string(data.size()) + " bytes exceed the limit of " +
                                            std::to_string(limits.max_log_size));
  Reader r(data);
  EventLog log;
  // PFP §10.2.1 TCG_PCClientPCREvent: the SHA-1 format header event.
  uint32_t pcr = 0, type = 0, size = 0;
  Bytes digest, body;
  if (!r.u32(pcr) || !r.u32(type) || !r.bytes(20, digest) || !r.u32(size))
    return log_error("truncated", 0, r.offset(), "header event cut short");
  if (pcr != 0 || type != ev::kNoAction)
    return log_error("bad_header", 0, 0, "first event is not EV_NO_ACTION in PCR 0");
  if (size > limits.max_event_data || size > r.remaining())
    return log_error("truncated", 0, r.offset(), "header event data of " + std::to_string(size) + " bytes");
  r.bytes(size, body);
  MCIMD_CHECK(parse_spec_id(body, log, limits));

  // PFP §10.2.2 TCG_PCR_EVENT2.
  for (std::size_t seq = 1; r.remaining() > 0; ++seq) {
    if (log.events.size() >= limits.max_events)
      return log_error("too_many_events", seq, r.offset(), "more than " + std::to_string(limits.max_events));
    const std::size_t start = r.offset();
    Event e;
    e.sequence = seq;
    uint32_t count = 0;
    if (!r.u32(e.pcr) || !r.u32(e.type) || !r.u32(count))
      return log_error("truncated", seq, start, "event header cut short");
    if (e.pcr > kMaxPcr) return log_error("pcr_out_of_range", seq, start, "PCR " + std::to_string(e.pcr));
    if (count == 0 || count > log.algorithms.size())
      return log_error("bad_digest_count", seq, start, std::to_string(count) + " digests");
    for (uint32_t i = 0; i < count; ++i) {
      uint16_t alg_id = 0;
      if (!r.u16(alg_id)) return log_error("truncated", seq, r.offset(), "digest list cut short");
      auto it = std::find_if(log.algorithms.begin(), log.algorithms.end(),
                             [&](const auto& a) { return a.first == alg_id; });
      if (it == log.algorithms.end())
        return log_error("unknown_algorithm", seq, r.offset(), "digest algorithm " + std::to_string(alg_id) +
                                                                   " not declared in the header");
      if (e.digest(alg_id)) return log_error("bad_digest_count", seq, r.offset(), "algorithm repeated");
      EventDigest d{alg_id, {}};
      if (!r.bytes(it->second, d.digest)) return log_error("truncated", seq, r.offset(), "digest cut short");
      e.digests.push_back(std::move(d));
    }
    uint32_t data_size = 0;
    if (!r.u32(data_size)) return log_error("truncated", seq, r.offset(), "event size cut short");
    if (data_size > limits.max_event_data)
      return log_error("too_large", seq, r.offset(), "event data of " + std::to_string(data_size) + " bytes");
    if (!r.bytes(data_size, e.data))
      return log_error("truncated", seq, r.offset(), "event data of " + std::to_string(data_size) +
                                                         " bytes exceeds the remaining " + std::to_string(r.remaining()));
    // PFP §10.4.5.3 TCG_EfiStartupLocalityEvent: signature then one byte of locality.
    if (e.type == ev::kNoAction && e.data.size() >= 16 && std::memcmp(e.data.data(), kStartupLocality, 16) == 0) {
      if (e.pcr != 0 || e.data.size() != 17 || log.startup_locality || (e.data[16] > 4 && e.data[16] != 0xFF))
        return log_error("bad_startup_locality", seq, start, "malformed or repeated StartupLocality event");
      log.startup_locality = e.data[16];
    }
    log.events.push_back(std::move(e));
  }
  return log;
}

Result<PcrValues> replay_event_log(const EventLog& log) {
  PcrValues out;
  for (const auto& declared : log.algorithms) {
    const uint16_t alg_id = declared.first;
    const std::size_t size = declared.second;
    if (!hash_size(alg_id)) continue;  // e.g. SM3: declared, not replayable here
    auto& bank = out[alg_id];
    auto pcr_of = [&](unsigned index) -> Bytes& {
      auto it = bank.find(index);
      if (it == bank.end()) it = bank.emplace(index, Bytes(size, 0)).first;
      return it->second;
    };
    if (log.startup_locality) pcr_of(0).back() = *log.startup_locality;
    for (const auto& e : log.events) {
      if (e.type == ev::kNoAction) continue;  // PFP §10.4.2: informational, never extended
      const Bytes* d = e.digest(alg_id);
      if (!d)
        return fail(Code::InvalidArgument, "missing_digest: event " + std::to_string(e.sequence) + " has no " +
                                               hash_alg_name(alg_id) + " digest");
      extend(alg_id, pcr_of(e.pcr), *d);
    }
  }
  return out;
}

bool ImaEntry::violation() const {
  return std::all_of(template_hash.begin(), template_hash.end(), [](uint8_t b) { return b == 0; });
}

Result<std::vector<ImaEntry>> parse_ima_log(std::string_view text, const EventLogLimits& limits) {
  if (text.size() > limits.max_log_size) return fail(Code::InvalidArgument, "too_large: IMA log exceeds the limit");
  std::vector<ImaEntry> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty()) continue;
    auto bad = [&](const std::string& why) {
      return fail(Code::InvalidArgument, "bad_ima_line: IMA log line " + std::to_string(line_no) + ": " + why);
    };
    if (line.size() > limits.max_ima_line) return bad("longer than " + std::to_string(limits.max_ima_line));
    if (out.size() >= limits.max_ima_lines) return bad("more than " + std::to_string(limits.max_ima_lines) + " lines");
    std::string_view f[4];
    for (auto& field : f) {
      std::size_t sp = line.find(' ');
      if (sp == std::string_view::npos) return bad("fewer than five fields");
      field = line.substr(0, sp);
      line = line.substr(sp + 1);
    }
    ImaEntry e;
    if (f[0].empty() || f[0].size() > 2 || !std::all_of(f[0].begin(), f[0].end(), [](char c) { return c >= '0' && c <= '9'; })) return bad("bad PCR");
    e.pcr = unsigned(std::stoul(std::string(f[0])));
    if (e.pcr > kMaxPcr) return bad("PCR out of range");
    if (!parse_hex(f[1], e.template_hash) || e.template_hash.size() != 20) return bad("template hash is not SHA-1 hex");
    e.template_name = std::string(f[2]);
    if (e.template_name == "ima") {
      e.filedata_alg = "sha1";
      if (!parse_hex(f[3], e.filedata_hash) || e.filedata_hash.size() != 20) return bad("file hash is not SHA-1 hex");
    } else {
      std::size_t colon = f[3].find(':');
      if (colon == std::string_view::npos) return bad("file hash lacks \"alg:\"");
      e.filedata_alg = std::string(f[3].substr(0, colon));
      if (!parse_hex(f[3].substr(colon + 1), e.filedata_hash) || e.filedata_hash.empty() || e.filedata_hash.size() > 64)
        return bad("file hash is not hex");
    }
    if (e.template_name == "ima-sig") {
      // "<filename> [<signature hex>]": the kernel prints an empty signature as nothing.
      std::size_t sp = line.rfind(' ');
      if (sp != std::string_view::npos) line = line.substr(0, sp);
    }
    e.filename = std::string(line);
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<Bytes> ima_template_hash(const ImaEntry& e, uint16_t hash_alg) {
  if (e.template_name != "ima-ng") return std::nullopt;
  // security/integrity/ima/ima_template_lib.c: d-ng = "<alg>:" NUL digest; n-ng = name NUL.
  Bytes data;
  put_le32(data, e.filedata_alg.size() + 2 + e.filedata_hash.size());
  data.insert(data.end(), e.filedata_alg.begin(), e.filedata_alg.end());
  data.push_back(':');
  data.push_back(0);
  data.insert(data.end(), e.filedata_hash.begin(), e.filedata_hash.end());
  put_le32(data, e.filename.size() + 1);
  data.insert(data.end(), e.filename.begin(), e.filename.end());
  data.push_back(0);
  auto h = hash(hash_alg, data);
  if (!h) return std::nullopt;
  return *h;
}

Result<ImaReplay> replay_ima(const std::vector<ImaEntry>& entries) {
  ImaReplay out;
  out.sha1.assign(20, 0);
  out.sha256_padded.assign(32, 0);
  Bytes per_bank(32, 0);
  bool per_bank_ok = true;
  for (const auto& e : entries) {
    if (e.pcr != 10) continue;
    ++out.entries;
    // ima_queue.c: a violation is recorded as zeros but extended as all ones.
    if (e.violation()) {
      extend(alg::kSha1, out.sha1, Bytes(20, 0xff));
      extend(alg::kSha256, out.sha256_padded, Bytes(32, 0xff));
      extend(alg::kSha256, per_bank, Bytes(32, 0xff));
      continue;
    }
    extend(alg::kSha1, out.sha1, e.template_hash);
    Bytes padded = e.template_hash;
    padded.resize(32, 0);
    extend(alg::kSha256, out.sha256_padded, padded);
    auto h = ima_template_hash(e, alg::kSha256);
    if (h) extend(alg::kSha256, per_bank, *h);
    else per_bank_ok = false;
  }
  if (per_bank_ok) out.sha256_per_bank = per_bank;
  return out;
}

}  // namespace mcimd::attestation
