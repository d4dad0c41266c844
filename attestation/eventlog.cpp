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

// PFP §10.4.5.1 TCG_EfiSpecIDEventStruct.signature and §10.4.5.3 StartupLocality signature;
// "Spec ID Event00" heads a TCG EFI Protocol 1.2 (SHA-1 only) log.
constexpr char kSpecId03[16] = "Spec ID Event03";
constexpr char kSpecId00[16] = "Spec ID Event00";
constexpr char kStartupLocality[16] = "StartupLocality";
constexpr unsigned kMaxPcr = 23;  // PC Client TPMs have PCR 0..23
constexpr unsigned kFirmwarePcrs = 8;  // PC Client PFP §3.3.4: PCRs 0–7 are the firmware's
constexpr uint8_t kHcrtmLocality = 4;  // TPM 2.0 Part 1 §34.3: H-CRTM starts PCR 0 at 0…0‖04

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
  if (r.bytes(16, signature) && std::memcmp(signature.data(), kSpecId00, 16) == 0)
    return log_error("legacy_format", 0, 32,
                     "a TCG 1.2 \"Spec ID Event00\" log holds SHA-1 digests only; only crypto-agile logs "
                     "(\"Spec ID Event03\") are accepted");
  if (signature.size() != 16 || std::memcmp(signature.data(), kSpecId03, 16) != 0)
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

}  // namespace

void extend_pcr(uint16_t hash_alg, Bytes& pcr, std::span<const uint8_t> digest) {
  Bytes input = pcr;
  input.insert(input.end(), digest.begin(), digest.end());
  pcr = *hash(hash_alg, input);  // a known hash (callers check): cannot fail
}

std::string pcr_label(uint16_t hash_alg, unsigned pcr) { return hash_alg_name(hash_alg) + ":" + std::to_string(pcr); }

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
  if (pcr != 0 || type != ev::kNoAction) {
    // A whole first record in the SHA-1 format that is not the Spec ID event: a legacy log.
    if (pcr <= kMaxPcr && size <= r.remaining())
      return log_error("legacy_format", 0, 0,
                       "the log starts with " + event_type_name(type) + " in PCR " + std::to_string(pcr) +
                           ", not the \"Spec ID Event03\" header: a SHA-1-only log of TCG_PCClientPCREvent "
                           "records (PFP §10.2.1); only crypto-agile logs (TCG_PCR_EVENT2) are accepted");
    return log_error("bad_header", 0, 0, "first event is not EV_NO_ACTION in PCR 0");
  }
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

Result<EventLogReplay> replay_event_log(const EventLog& log) {
  EventLogReplay out;
  // PC Client PFP §3.3.4: PCRs 0–7 belong to the firmware, which measures into each of them.
  for (unsigned pcr = 0; pcr < kFirmwarePcrs; ++pcr) out.covered.insert(pcr);
  std::optional<uint8_t> pcr0_start = log.startup_locality;
  bool pcr0_extended = false;
  for (const auto& e : log.events) {
    if (e.type == ev::kNoAction) continue;
    out.covered.insert(e.pcr);
    if (e.pcr != 0) continue;
    if (e.type == ev::kEfiHcrtmEvent) {
      // TPM 2.0 Part 1 §34.3: the H-CRTM sequence starts PCR 0 at 0…0‖04 before anything else.
      if (pcr0_extended || (pcr0_start && *pcr0_start != kHcrtmLocality))
        return fail(Code::InvalidArgument, "bad_hcrtm: event " + std::to_string(e.sequence) +
                                               " is an H-CRTM measurement after PCR 0 was started otherwise");
      pcr0_start = kHcrtmLocality;
    }
    pcr0_extended = true;
  }
  for (const auto& [alg_id, size] : log.algorithms) {
    if (!hash_size(alg_id)) {
      out.unreplayable[alg_id] = "algorithm " + std::to_string(alg_id) + " is not one this verifier hashes";
      continue;
    }
    const auto missing = std::find_if(log.events.begin(), log.events.end(), [&, alg = alg_id](const Event& e) {
      return e.type != ev::kNoAction && !e.digest(alg);
    });
    if (missing != log.events.end()) {
      out.unreplayable[alg_id] =
          "event " + std::to_string(missing->sequence) + " has no " + hash_alg_name(alg_id) + " digest";
      continue;
    }
    auto& bank = out.pcrs[alg_id];
    for (unsigned pcr : out.covered) bank.emplace(pcr, Bytes(size, 0));
    if (pcr0_start) bank[0].back() = *pcr0_start;
    for (const auto& e : log.events)
      if (e.type != ev::kNoAction) extend_pcr(alg_id, bank[e.pcr], *e.digest(alg_id));  // PFP §10.4.2
  }
  return out;
}

}  // namespace mcimd::attestation
