#include "attestation/uefi_events.hpp"

#include <algorithm>
#include <cstdio>

#include "attestation/verifier_tpm.hpp"

namespace mcimd::attestation {

namespace {

constexpr std::size_t kVariableHeader = 32;  // PFP §10.2.6: GUID (16) + two UINT64 lengths
constexpr std::size_t kImageLoadHeader = 32;  // PFP §10.2.3: four UINT64 fields
constexpr unsigned kBootPcr = 1;             // PFP §3.3.4.3: boot variables go to PCR 1
constexpr unsigned kBootManagerPcr = 4;      // PFP §3.3.4.5: boot manager code and attempts
constexpr std::size_t kSeparatorSize = 4;    // PFP §3.3.2.2: EV_SEPARATOR data is a UINT32
// UEFI 2.x §10.3.1 device path node types.
constexpr uint8_t kMediaDevicePath = 0x04;
constexpr uint8_t kMediaFilePath = 0x04;     // subtype of kMediaDevicePath
constexpr uint8_t kEndOfPath = 0x7F;         // end of an instance (subtype 0x01) or of the path (0xFF)
constexpr std::size_t kNodeHeader = 4;

uint64_t le64(std::span<const uint8_t> d, std::size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | d[at + static_cast<std::size_t>(i)];
  return v;
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

// UTF-16LE code units to UTF-8; nullopt for an unpaired surrogate or (unless allowed as the last
// unit) a NUL.
std::optional<std::string> utf16_to_utf8(std::span<const uint8_t> le, bool nul_terminated) {
  std::string out;
  const std::size_t units = le.size() / 2;
  for (std::size_t i = 0; i < units; ++i) {
    uint32_t u = le[2 * i] | (uint32_t(le[2 * i + 1]) << 8);
    if (u == 0) {
      if (nul_terminated && i + 1 == units) break;
      return std::nullopt;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
      if (i + 1 >= units) return std::nullopt;
      uint32_t low = le[2 * i + 2] | (uint32_t(le[2 * i + 3]) << 8);
      if (low < 0xDC00 || low > 0xDFFF) return std::nullopt;
      u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
      ++i;
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
      return std::nullopt;
    }
    put_utf8(out, u);
  }
  return out;
}

// Whether every digest the event carries in a bank this verifier hashes is H(data), and there is
// at least one.
bool digests_cover(const Event& e, std::span<const uint8_t> data) {
  std::size_t checked = 0;
  for (const auto& d : e.digests) {
    if (!hash_size(d.hash_alg)) continue;
    auto h = hash(d.hash_alg, data);
    if (!h || *h != d.digest) return false;
    ++checked;
  }
  return checked > 0;
}

bool is_variable_type(uint32_t type) {
  return type == ev::kEfiVariableDriverConfig || type == ev::kEfiVariableBoot || type == ev::kEfiVariableBoot2 ||
         type == ev::kEfiVariableAuthority;
}

// UEFI 2.x §3.3: "BootOrder" and "Boot####" (four upper-case hex digits).
bool is_boot_variable(const UefiVariable& v) {
  if (v.guid != kEfiGlobalVariable) return false;
  if (v.name == "BootOrder") return true;
  return v.name.size() == 8 && v.name.starts_with("Boot") &&
         std::all_of(v.name.begin() + 4, v.name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
         });
}

bool printable_ascii(std::span<const uint8_t> data) {
  return !data.empty() && std::all_of(data.begin(), data.end(), [](uint8_t c) { return c >= 0x20 && c < 0x7F; });
}

// PFP §10.4.1: an EV_SEPARATOR (a UINT32) or EV_EFI_ACTION (an ASCII string) event whose digests
// are the hash of its data: a marker, not something that was loaded.
bool is_verified_marker(const Event& e) {
  if (e.type == ev::kSeparator) return e.data.size() == kSeparatorSize && digests_cover(e, e.data);
  if (e.type == ev::kEfiAction) return printable_ascii(e.data) && digests_cover(e, e.data);
  return false;
}

void read_variable(const Event& e, EventContent& out) {
  auto parsed = parse_uefi_variable(e.data);
  if (parsed && digests_cover(e, e.data)) {
    out.variables.push_back({e.sequence, e.pcr, e.type, std::move(*parsed), /*name_covered=*/true});
    return;
  }
  if (!is_variable_type(e.type)) return;  // other data that merely fails to parse as a variable
  if (!parsed) {
    out.unverified_variables.push_back({e.sequence, e.type, parsed.error().message});
    return;
  }
  if (e.type == ev::kEfiVariableBoot && e.pcr == kBootPcr && is_boot_variable(*parsed) &&
      digests_cover(e, parsed->data)) {
    out.variables.push_back({e.sequence, e.pcr, e.type, std::move(*parsed), /*name_covered=*/false});
    return;
  }
  out.unverified_variables.push_back(
      {e.sequence, e.type,
       "its digests are the hash of neither its UEFI_VARIABLE_DATA nor (for a boot variable) its VariableData"});
}

}  // namespace

std::string guid_to_string(const Guid& g) {
  char buf[37];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2],
                g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
  return buf;
}

std::optional<Guid> guid_from_string(std::string_view text) {
  // 8-4-4-4-12 hex digits; the first three groups are stored little-endian.
  static constexpr std::size_t kDashes[] = {8, 13, 18, 23};
  if (text.size() != 36) return std::nullopt;
  std::string hex;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (std::find(std::begin(kDashes), std::end(kDashes), i) != std::end(kDashes)) {
      if (text[i] != '-') return std::nullopt;
    } else {
      hex.push_back(text[i]);
    }
  }
  auto bytes = from_hex(hex, "GUID", 16);
  if (!bytes) return std::nullopt;
  const Bytes& b = *bytes;
  return Guid{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]};
}

Result<UefiVariable> parse_uefi_variable(std::span<const uint8_t> data) {
  auto bad = [](const std::string& why) { return fail(Code::InvalidArgument, "bad_variable: " + why); };
  if (data.size() < kVariableHeader) return bad("shorter than the 32-byte UEFI_VARIABLE_DATA header");
  const uint64_t name_length = le64(data, 16);
  const uint64_t data_length = le64(data, 24);
  if (name_length == 0 || name_length > kMaxVariableName)
    return bad("UnicodeNameLength " + std::to_string(name_length) + " is not 1.." + std::to_string(kMaxVariableName));
  const std::size_t rest = data.size() - kVariableHeader;
  if (data_length > rest || 2 * name_length != rest - data_length)
    return bad("UnicodeNameLength " + std::to_string(name_length) + " and VariableDataLength " +
               std::to_string(data_length) + " do not add up to the " + std::to_string(data.size()) + " bytes");
  UefiVariable v;
  std::copy(data.begin(), data.begin() + 16, v.guid.begin());
  auto name = utf16_to_utf8(data.subspan(kVariableHeader, 2 * name_length), /*nul_terminated=*/false);
  if (!name) return bad("UnicodeName is not valid UTF-16");
  v.name = std::move(*name);
  auto value = data.subspan(kVariableHeader + 2 * name_length);
  v.data.assign(value.begin(), value.end());
  return v;
}

Result<ImageLoad> parse_image_load(std::span<const uint8_t> data) {
  auto bad = [](const std::string& why) { return fail(Code::InvalidArgument, "bad_image_load: " + why); };
  if (data.size() < kImageLoadHeader) return bad("shorter than the 32-byte UEFI_IMAGE_LOAD_EVENT header");
  ImageLoad out;
  out.location = le64(data, 0);
  out.length = le64(data, 8);
  out.link_time_address = le64(data, 16);
  const uint64_t path_length = le64(data, 24);
  if (path_length > data.size() - kImageLoadHeader)
    return bad("LengthOfDevicePath " + std::to_string(path_length) + " exceeds the event");
  auto path = data.subspan(kImageLoadHeader, path_length);
  out.device_path.assign(path.begin(), path.end());

  std::string file;
  std::size_t nodes = 0;
  for (std::size_t at = 0; at < path.size();) {
    if (++nodes > kMaxDevicePathNodes) return bad("more than " + std::to_string(kMaxDevicePathNodes) + " nodes");
    if (path.size() - at < kNodeHeader) return bad("device path node header cut short");
    const uint8_t type = path[at], subtype = path[at + 1];
    const std::size_t length = path[at + 2] | (std::size_t(path[at + 3]) << 8);
    if (length < kNodeHeader || length > path.size() - at)
      return bad("device path node of length " + std::to_string(length) + " at offset " + std::to_string(at));
    if (type == kEndOfPath) break;  // the end of this instance (or of the whole path)
    if (type == kMediaDevicePath && subtype == kMediaFilePath) {
      auto name = utf16_to_utf8(path.subspan(at + kNodeHeader, length - kNodeHeader), /*nul_terminated=*/true);
      if (!name) return bad("file path node is not valid UTF-16");
      if (!file.empty() && file.back() != '\\' && !name->starts_with("\\")) file.push_back('\\');
      file += *name;
    }
    at += length;
  }
  if (!file.empty()) out.file_path = std::move(file);
  return out;
}

EventContent read_event_content(const EventLog& log) {
  EventContent out;
  for (const auto& e : log.events) {
    if (e.type == ev::kNoAction) continue;  // never extended: its digests say nothing
    read_variable(e, out);
    if (e.pcr != kBootManagerPcr || is_verified_marker(e)) continue;
    LoadedImage image{e.sequence, e.type, e.digests, std::nullopt};
    if (e.type == ev::kEfiBootServicesApplication)
      if (auto load = parse_image_load(e.data)) image.file_path = load->file_path;
    out.images.push_back(std::move(image));
  }
  return out;
}

}  // namespace mcimd::attestation
