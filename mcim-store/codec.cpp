#include "mcim-store/codec.hpp"

#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace mcimd::store {

std::string_view to_string(ProfileState s) {
  switch (s) {
    case ProfileState::Enabled: return "enabled";
    case ProfileState::Disabled: return "disabled";
  }
  return "disabled";
}

std::string_view to_string(ProfileClass c) {
  switch (c) {
    case ProfileClass::Operational: return "operational";
    case ProfileClass::Bootstrap: return "bootstrap";
  }
  return "operational";
}

std::optional<ProfileState> profile_state_from_string(std::string_view s) {
  if (s == "enabled") return ProfileState::Enabled;
  if (s == "disabled") return ProfileState::Disabled;
  return std::nullopt;
}

std::optional<ProfileClass> profile_class_from_string(std::string_view s) {
  if (s == "operational") return ProfileClass::Operational;
  if (s == "bootstrap") return ProfileClass::Bootstrap;
  return std::nullopt;
}

std::string_view to_string(KeyProtection k) { return k == KeyProtection::TpmAes ? "tpm-aes" : "sealed"; }

std::optional<KeyProtection> key_protection_from_string(std::string_view s) {
  if (s == "tpm-aes") return KeyProtection::TpmAes;
  if (s == "sealed") return KeyProtection::Sealed;
  return std::nullopt;
}

}  // namespace mcimd::store

namespace mcimd::store::detail {

using json = nlohmann::json;

namespace {

// TS 33.102 §6.3.2: SQN is 48 bits.
constexpr unsigned kSqnBits = 48;
constexpr uint64_t kSqnLimit = uint64_t{1} << kSqnBits;
// aka/sqn.hpp: ind_bits 1..10, delta 1..2^43-1.
constexpr unsigned kMaxIndBits = 10;
constexpr uint64_t kDeltaLimit = uint64_t{1} << 43;

bool printable_ascii(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

// Reads the members of one JSON object; every error names the file and the field path.
class Fields {
 public:
  Fields(const json& obj, const std::string& file, std::string prefix = {})
      : obj_(obj), file_(file), prefix_(std::move(prefix)) {}

  tl::unexpected<Error> bad(std::string_view field, std::string_view why) const {
    return fail(Code::StoreCorrupt, file_ + ": field '" + prefix_ + std::string(field) + "' " + std::string(why));
  }

  Result<const json*> member(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) return bad(key, "is missing");
    return &*it;
  }

  Result<uint64_t> u64(const char* key, uint64_t max = std::numeric_limits<uint64_t>::max()) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_number_unsigned()) return bad(key, "must be a non-negative integer");
    auto n = v->get<uint64_t>();
    if (n > max) return bad(key, "must be at most " + std::to_string(max));
    return n;
  }

  Result<std::string> str(const char* key, std::size_t max_len) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_string()) return bad(key, "must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_len) return bad(key, "is longer than " + std::to_string(max_len) + " characters");
    return s;
  }

  Result<std::optional<std::string>> optional_str(const char* key, std::size_t max_len) const {
    const json* v = MCIMD_TRY(member(key));
    if (v->is_null()) return std::optional<std::string>();
    return std::optional<std::string>(MCIMD_TRY(str(key, max_len)));
  }

  Result<bool> boolean(const char* key) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_boolean()) return bad(key, "must be true or false");
    return v->get<bool>();
  }

  Result<Bytes> base64url(const char* key, std::size_t max_len) const {
    auto text = MCIMD_TRY(str(key, (max_len + 2) / 3 * 4));
    auto bytes = base64url_decode(text, key);
    if (!bytes) return bad(key, "is not valid base64url");
    if (bytes->size() > max_len) return bad(key, "is longer than " + std::to_string(max_len) + " bytes");
    return std::move(*bytes);
  }

  Result<Fields> object(const char* key) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_object()) return bad(key, "must be an object");
    return Fields(*v, file_, prefix_ + key + ".");
  }

  Status format() const {
    auto f = MCIMD_TRY(u64("format"));
    if (f != kFormat) return bad("format", "is " + std::to_string(f) + "; this version reads format " +
                                               std::to_string(kFormat));
    return {};
  }

 private:
  const json& obj_;
  const std::string& file_;
  std::string prefix_;
};

Result<json> parse_object(std::string_view text, const std::string& file) {
  json j = json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Code::StoreCorrupt, file + ": not valid JSON (truncated or damaged)");
  if (!j.is_object()) return fail(Code::StoreCorrupt, file + ": not a JSON object");
  return j;
}

std::string dump(const json& j) { return j.dump(2) + "\n"; }

}  // namespace

std::optional<uint32_t> parse_profile_id(std::string_view id) {
  if (id.size() < 2 || id.size() > 11 || id[0] != 'p') return std::nullopt;
  std::string_view digits = id.substr(1);
  if (!all_digits(digits) || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) v = v * 10 + static_cast<uint64_t>(c - '0');
  if (v > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string profile_id(uint32_t index) { return "p" + std::to_string(index); }

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool valid_iccid(std::string_view s) { return s.size() >= 18 && s.size() <= 20 && all_digits(s); }
bool valid_imsi(std::string_view s) { return s.size() >= 6 && s.size() <= 15 && all_digits(s); }
bool valid_operator_id(std::string_view s) { return !s.empty() && s.size() <= 64 && printable_ascii(s); }

bool valid_algorithm(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

bool valid_pcr_policy(std::string_view s) { return s.size() <= 256 && printable_ascii(s); }

std::optional<std::string> bad_sqn_parameter(const aka::SqnParameters& p) {
  if (p.ind_bits == 0 || p.ind_bits > kMaxIndBits) return "ind_bits";
  if (p.delta == 0 || p.delta >= kDeltaLimit) return "delta";
  if (p.age_limit >= kSqnLimit) return "age_limit";
  return std::nullopt;
}

Status validate_metadata(const ProfileMetadata& m, Code code, std::string_view where) {
  auto bad = [&](std::string_view field, std::string_view why) {
    return fail(code, std::string(where) + ": field '" + std::string(field) + "' " + std::string(why));
  };
  auto index = parse_profile_id(m.id);
  if (!index) return bad("id", "must be \"p<index>\"");
  if (*index != m.index) return bad("index", "does not match the id");
  if (!valid_iccid(m.iccid)) return bad("iccid", "must be 18-20 digits");
  if (!valid_imsi(m.imsi)) return bad("imsi", "must be 6-15 digits");
  if (!valid_operator_id(m.operator_id)) return bad("operator", "must be 1-64 printable ASCII characters");
  if (!valid_algorithm(m.algorithm)) return bad("algorithm", "must be 1-32 characters of [a-z0-9-]");
  if (!valid_pcr_policy(m.pcr_policy)) return bad("pcr_policy", "must be at most 256 printable ASCII characters");
  if (auto field = bad_sqn_parameter(m.sqn)) return bad("sqn." + *field, "is out of range");
  return {};
}

std::string encode_store(const StoreFile& f) {
  json profiles = json::array();
  for (const auto& p : f.profiles)
    profiles.push_back({{"id", p.id}, {"metadata_generation", p.meta_generation}, {"sqn_generation", p.sqn_generation}});
  json j = {{"format", kFormat},
            {"generation", f.generation},
            {"next_index", f.next_index},
            {"active", f.active ? json(*f.active) : json(nullptr)},
            {"srk", f.srk ? json(base64url_encode(*f.srk)) : json(nullptr)},
            {"profiles", std::move(profiles)}};
  return dump(j);
}

std::string encode_metadata(uint64_t generation, const ProfileMetadata& m) {
  json j = {{"format", kFormat},
            {"generation", generation},
            {"id", m.id},
            {"index", m.index},
            {"iccid", m.iccid},
            {"imsi", m.imsi},
            {"operator", m.operator_id},
            {"state", std::string(to_string(m.state))},
            {"class", std::string(to_string(m.profile_class))},
            {"algorithm", m.algorithm},
            {"key_protection", std::string(to_string(m.key_protection))},
            {"amf", base64url_encode(m.amf)},
            {"sqn",
             {{"ind_bits", m.sqn.ind_bits},
              {"delta", m.sqn.delta},
              {"age_limit", m.sqn.age_limit},
              {"require_amf_separation", m.sqn.require_amf_separation}}},
            {"pcr_policy", m.pcr_policy}};
  return dump(j);
}

std::string encode_sqn(uint64_t generation, const aka::SqnArray& sqns) {
  json j = {{"format", kFormat},
            {"generation", generation},
            {"ind_bits", sqns.parameters().ind_bits},
            {"seq", sqns.seq()}};
  return dump(j);
}

Result<StoreFile> decode_store(std::string_view text, const std::string& file) {
  auto j = MCIMD_TRY(parse_object(text, file));
  Fields f(j, file);
  MCIMD_CHECK(f.format());
  StoreFile out;
  out.generation = MCIMD_TRY(f.u64("generation"));
  out.next_index = static_cast<uint32_t>(MCIMD_TRY(f.u64("next_index", std::numeric_limits<uint32_t>::max())));
  out.active = MCIMD_TRY(f.optional_str("active", 11));
  const json* srk = MCIMD_TRY(f.member("srk"));
  if (!srk->is_null()) {
    out.srk = MCIMD_TRY(f.base64url("srk", kMaxBlob));
    if (out.srk->empty()) return f.bad("srk", "is empty");
  }
  const json* list = MCIMD_TRY(f.member("profiles"));
  if (!list->is_array()) return f.bad("profiles", "must be an array");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string where = "profiles[" + std::to_string(i) + "]";
    const json& entry = (*list)[i];
    if (!entry.is_object()) return f.bad(where, "must be an object");
    Fields e(entry, file, where + ".");
    ProfileRecord r;
    r.id = MCIMD_TRY(e.str("id", 11));
    auto index = parse_profile_id(r.id);
    if (!index) return e.bad("id", "must be \"p<index>\"");
    if (*index >= out.next_index) return e.bad("id", "has an index not below next_index");
    if (!seen.insert(r.id).second) return e.bad("id", "is listed twice");
    r.meta_generation = MCIMD_TRY(e.u64("metadata_generation", out.generation));
    r.sqn_generation = MCIMD_TRY(e.u64("sqn_generation", out.generation));
    out.profiles.push_back(std::move(r));
  }
  if (out.active) {
    if (!seen.contains(*out.active)) return f.bad("active", "names a profile that is not listed");
  }
  return out;
}

Result<MetadataFile> decode_metadata(std::string_view text, const std::string& file) {
  auto j = MCIMD_TRY(parse_object(text, file));
  Fields f(j, file);
  MCIMD_CHECK(f.format());
  MetadataFile out;
  auto& m = out.meta;
  out.generation = MCIMD_TRY(f.u64("generation"));
  m.id = MCIMD_TRY(f.str("id", 11));
  m.index = static_cast<uint32_t>(MCIMD_TRY(f.u64("index", std::numeric_limits<uint32_t>::max())));
  m.iccid = MCIMD_TRY(f.str("iccid", 20));
  m.imsi = MCIMD_TRY(f.str("imsi", 15));
  m.operator_id = MCIMD_TRY(f.str("operator", 64));
  auto state = profile_state_from_string(MCIMD_TRY(f.str("state", 16)));
  if (!state) return f.bad("state", "must be \"enabled\" or \"disabled\"");
  m.state = *state;
  auto cls = profile_class_from_string(MCIMD_TRY(f.str("class", 16)));
  if (!cls) return f.bad("class", "must be \"operational\" or \"bootstrap\"");
  m.profile_class = *cls;
  m.algorithm = MCIMD_TRY(f.str("algorithm", 32));
  auto protection = key_protection_from_string(MCIMD_TRY(f.str("key_protection", 16)));
  if (!protection) return f.bad("key_protection", "must be \"tpm-aes\" or \"sealed\"");
  m.key_protection = *protection;
  auto amf = MCIMD_TRY(f.base64url("amf", 2));
  if (amf.size() != 2) return f.bad("amf", "must be 2 bytes");
  m.amf = {amf[0], amf[1]};
  auto sqn = MCIMD_TRY(f.object("sqn"));
  m.sqn.ind_bits = static_cast<unsigned>(MCIMD_TRY(sqn.u64("ind_bits", kMaxIndBits)));
  m.sqn.delta = MCIMD_TRY(sqn.u64("delta"));
  m.sqn.age_limit = MCIMD_TRY(sqn.u64("age_limit"));
  m.sqn.require_amf_separation = MCIMD_TRY(sqn.boolean("require_amf_separation"));
  m.pcr_policy = MCIMD_TRY(f.str("pcr_policy", 256));
  MCIMD_CHECK(validate_metadata(m, Code::StoreCorrupt, file));
  return out;
}

Result<SqnFile> decode_sqn(std::string_view text, const std::string& file, const aka::SqnParameters& params) {
  auto j = MCIMD_TRY(parse_object(text, file));
  Fields f(j, file);
  MCIMD_CHECK(f.format());
  SqnFile out;
  out.generation = MCIMD_TRY(f.u64("generation"));
  auto ind_bits = MCIMD_TRY(f.u64("ind_bits", kMaxIndBits));
  if (ind_bits != params.ind_bits) return f.bad("ind_bits", "differs from the profile's sqn.ind_bits");
  const json* seq = MCIMD_TRY(f.member("seq"));
  const std::size_t slots = std::size_t{1} << params.ind_bits;
  if (!seq->is_array() || seq->size() != slots)
    return f.bad("seq", "must be an array of " + std::to_string(slots) + " integers");
  // TS 33.102 C.1.1: SQN = SEQ ‖ IND, so SEQ has 48 − ind_bits bits.
  const uint64_t seq_limit = kSqnLimit >> params.ind_bits;
  out.seq.reserve(slots);
  for (std::size_t i = 0; i < slots; ++i) {
    const json& v = (*seq)[i];
    if (!v.is_number_unsigned() || v.get<uint64_t>() >= seq_limit)
      return f.bad("seq[" + std::to_string(i) + "]", "must be an integer below 2^" +
                                                          std::to_string(kSqnBits - params.ind_bits));
    out.seq.push_back(v.get<uint64_t>());
  }
  return out;
}

}  // namespace mcimd::store::detail
