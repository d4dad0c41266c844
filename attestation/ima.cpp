#include "attestation/ima.hpp"

#include <algorithm>

#include "attestation/verifier_tpm.hpp"

namespace mcimd::attestation {

namespace {

constexpr unsigned kMaxPcr = 23;              // PC Client TPMs have PCR 0..23
constexpr std::size_t kSha1Size = 20;         // the list's template hash and the "ima" file digest
constexpr std::size_t kImaNameField = 256;    // IMA_EVENT_NAME_LEN_MAX + 1 (ima_crypto.c)
constexpr unsigned kAggregatePcrsSha1 = 8;    // ima_calc_boot_aggregate: PCRs 0–7 for sha1
constexpr unsigned kAggregatePcrsOther = 10;  // and 0–9 for other banks (kernels 5.8+)

bool parse_hex(std::string_view text, Bytes& out) {
  auto r = from_hex(text, "hex");
  if (!r) return false;
  out = std::move(*r);
  return true;
}

void put_le32(Bytes& out, std::size_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

// A template field with its little-endian u32 length (ima_calc_field_array_hash for every
// template but "ima").
void put_field(Bytes& out, std::span<const uint8_t> field) {
  put_le32(out, field.size());
  out.insert(out.end(), field.begin(), field.end());
}

bool has_extra_field(std::string_view template_name) {
  return template_name == "ima-sig" || template_name == "ima-buf";
}

std::optional<uint16_t> alg_named(std::string_view name) {
  auto alg = hash_alg_from_name(name);
  if (!alg) return std::nullopt;
  return *alg;
}

}  // namespace

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
    if (f[0].empty() || f[0].size() > 2 || !std::all_of(f[0].begin(), f[0].end(), [](char c) { return c >= '0' && c <= '9'; }))
      return bad("bad PCR");
    e.pcr = unsigned(std::stoul(std::string(f[0])));
    if (e.pcr > kMaxPcr) return bad("PCR out of range");
    if (!parse_hex(f[1], e.template_hash) || e.template_hash.size() != kSha1Size)
      return bad("template hash is not SHA-1 hex");
    e.template_name = std::string(f[2]);
    if (e.template_name == "ima") {
      e.filedata_alg = "sha1";
      if (!parse_hex(f[3], e.filedata_hash) || e.filedata_hash.size() != kSha1Size)
        return bad("file hash is not SHA-1 hex");
    } else {
      std::size_t colon = f[3].find(':');
      if (colon == std::string_view::npos) return bad("file hash lacks \"alg:\"");
      e.filedata_alg = std::string(f[3].substr(0, colon));
      if (!parse_hex(f[3].substr(colon + 1), e.filedata_hash) || e.filedata_hash.empty() || e.filedata_hash.size() > 64)
        return bad("file hash is not hex");
    }
    if (has_extra_field(e.template_name)) {
      // "<name> <hex>" or "<name> ": the kernel prints the separator even for an empty field.
      std::size_t sp = line.rfind(' ');
      if (sp == std::string_view::npos) return bad(e.template_name + " line lacks its last field");
      if (!parse_hex(line.substr(sp + 1), e.extra)) return bad(e.template_name + " last field is not hex");
      line = line.substr(0, sp);
    }
    e.filename = std::string(line);
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<Bytes> ima_template_data(const ImaEntry& e) {
  Bytes data;
  if (e.template_name == "ima") {
    // ima_template_lib.c: 'd' is the bare digest, 'n' the name and its NUL; ima_crypto.c hashes
    // neither length and pads 'n' to 256 bytes.
    if (e.filedata_hash.size() != kSha1Size || e.filename.size() + 1 > kImaNameField) return std::nullopt;
    data = e.filedata_hash;
    data.insert(data.end(), e.filename.begin(), e.filename.end());
    data.resize(kSha1Size + kImaNameField, 0);
    return data;
  }
  if (e.template_name != "ima-ng" && !has_extra_field(e.template_name)) return std::nullopt;
  // d-ng: "<alg>:" NUL digest (ima_eventdigest_init_common, DATA_FMT_DIGEST_WITH_ALGO).
  Bytes digest(e.filedata_alg.begin(), e.filedata_alg.end());
  digest.push_back(':');
  digest.push_back(0);
  digest.insert(digest.end(), e.filedata_hash.begin(), e.filedata_hash.end());
  put_field(data, digest);
  // n-ng: the name and its NUL (ima_write_template_field_data, DATA_FMT_STRING).
  Bytes name(e.filename.begin(), e.filename.end());
  name.push_back(0);
  put_field(data, name);
  if (has_extra_field(e.template_name)) put_field(data, e.extra);  // sig / buf, possibly empty
  return data;
}

std::optional<Bytes> ima_template_hash(const ImaEntry& e, uint16_t hash_alg) {
  auto data = ima_template_data(e);
  if (!data) return std::nullopt;
  auto h = hash(hash_alg, *data);
  if (!h) return std::nullopt;
  return *h;
}

std::optional<std::size_t> ima_quoted_prefix(const std::vector<ImaEntry>& entries, uint16_t bank, ImaBankRule rule,
                                             const Bytes& quoted) {
  const std::size_t size = hash_size(bank);
  if (!size || quoted.size() != size) return std::nullopt;
  Bytes pcr(size, 0);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const ImaEntry& e = entries[i];
    if (e.pcr != kImaPcr) continue;
    Bytes digest;
    if (e.violation()) {
      // ima_queue.c: a violation is recorded as zeros and extended as all ones.
      digest.assign(rule == ImaBankRule::PaddedSha1 ? kSha1Size : size, 0xFF);
      digest.resize(size, 0);
    } else if (rule == ImaBankRule::PerBankTemplateDigest) {
      auto h = ima_template_hash(e, bank);
      if (!h) return std::nullopt;
      digest = std::move(*h);
    } else {
      digest = e.template_hash;
      digest.resize(size, 0);  // TemplateHashSha1: already 20 bytes; PaddedSha1: zero-padded
    }
    extend_pcr(bank, pcr, digest);
    if (pcr == quoted) return i + 1;
  }
  return std::nullopt;
}

Result<Bytes> ima_boot_aggregate(std::string_view alg, const PcrValues& quoted) {
  auto id = alg_named(alg);
  if (!id) return fail(Code::Unsupported, "boot_aggregate hash \"" + std::string(alg) + "\" is not one this verifier knows");
  const unsigned count = *id == alg::kSha1 ? kAggregatePcrsSha1 : kAggregatePcrsOther;
  auto bank = quoted.find(*id);
  Bytes input;
  std::string missing;
  for (unsigned pcr = 0; pcr < count; ++pcr) {
    const Bytes* v = nullptr;
    if (bank != quoted.end())
      if (auto it = bank->second.find(pcr); it != bank->second.end()) v = &it->second;
    if (!v) {
      missing += (missing.empty() ? "" : ",") + std::to_string(pcr);
      continue;
    }
    input.insert(input.end(), v->begin(), v->end());
  }
  if (!missing.empty())
    return fail(Code::InvalidArgument, "the boot_aggregate covers " + std::string(alg) + " PCRs 0-" +
                                           std::to_string(count - 1) + ", but " + std::string(alg) + ":" + missing +
                                           " are not quoted");
  return hash(*id, input);
}

}  // namespace mcimd::attestation
