#include "mcim-store/codec.hpp"

#include <algorithm>
#include <initializer_list>
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
// TPM 2.0 Part 1 §16: a name is nameAlg (2 bytes) ‖ digest; SHA-512's, 66 bytes, is the longest.
constexpr std::size_t kMaxAuthority = 66;
// A P-256 SubjectPublicKeyInfo in DER is 91 bytes; room for other encodings of one key.
constexpr std::size_t kMaxSubscriberKey = 512;
constexpr std::size_t kMaxId = 11;  // "p" + the 10 digits of a uint32
constexpr std::size_t kMaxPackageId = 64;
constexpr std::size_t kSha256Size = 32;
// Times are seconds since the epoch; 2^40 s is beyond the year 36000.
constexpr uint64_t kMaxTime = uint64_t{1} << 40;

bool printable_ascii(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

struct BadField {
  std::string field, why;
};

std::optional<BadField> bad_sqn_parameter(const aka::SqnParameters& p) {
  if (p.ind_bits == 0 || p.ind_bits > kMaxIndBits) return BadField{"sqn.ind_bits", "must be 1-10"};
  if (p.delta == 0 || p.delta >= kDeltaLimit) return BadField{"sqn.delta", "must be 1..2^43-1"};
  if (p.age_limit >= kSqnLimit) return BadField{"sqn.age_limit", "must be below 2^48"};
  return std::nullopt;
}

std::optional<BadField> metadata_problem(const ProfileMetadata& m) {
  auto index = parse_profile_id(m.id);
  if (!index) return BadField{"id", "must be \"p<index>\""};
  if (*index != m.index) return BadField{"index", "does not match the id"};
  if (!valid_iccid(m.iccid)) return BadField{"iccid", "must be 18-20 digits"};
  if (!valid_imsi(m.imsi)) return BadField{"imsi", "must be 6-15 digits"};
  if (!valid_operator_id(m.operator_id)) return BadField{"operator", "must be 1-64 printable ASCII characters"};
  if (!valid_algorithm(m.algorithm)) return BadField{"algorithm", "must be 1-32 characters of [a-z0-9-]"};
  if (m.authority.empty() || m.authority.size() > kMaxAuthority)
    return BadField{"authority", "must be a TPM name of 1-" + std::to_string(kMaxAuthority) + " bytes"};
  if (m.rules.locked_until && *m.rules.locked_until > kMaxTime)
    return BadField{"rules.locked_until", "must be at most 2^40 seconds since the epoch"};
  if (m.origin) {
    if (!valid_package_id(m.origin->package_id))
      return BadField{"origin.package_id", "must be 1-64 characters of [A-Za-z0-9._-]"};
    if (m.origin->package_sha256.size() != kSha256Size) return BadField{"origin.package_sha256", "must be 32 bytes"};
  }
  return bad_sqn_parameter(m.sqn);
}

// Reads the members of one JSON object; every error names the file and the field path.
class Fields {
 public:
  Fields(const json& obj, const std::string& file, std::string prefix = {}, unsigned format = kFormat)
      : obj_(obj), file_(file), prefix_(std::move(prefix)), format_(format) {}

  unsigned format() const { return format_; }

  tl::unexpected<Error> bad(std::string_view field, std::string_view why) const {
    return fail(Code::StoreCorrupt, file_ + ": field '" + prefix_ + std::string(field) + "' " + std::string(why));
  }

  // The format knows exactly these members; the first other one is named.
  Status only(std::initializer_list<std::string_view> known) const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (std::find(known.begin(), known.end(), it.key()) == known.end())
        return bad(it.key(), "is not a field of format " + std::to_string(format_));
    return {};
  }

  Result<const json*> member(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) return bad(key, "is missing");
    return &*it;
  }

  Result<bool> is_null(const char* key) const { return MCIMD_TRY(member(key))->is_null(); }

  Result<uint64_t> u64(const char* key, uint64_t max = std::numeric_limits<uint64_t>::max()) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_number_unsigned()) return bad(key, "must be a non-negative integer");
    auto n = v->get<uint64_t>();
    if (n > max) return bad(key, "must be at most " + std::to_string(max));
    return n;
  }

  Result<uint32_t> u32(const char* key) const {
    return static_cast<uint32_t>(MCIMD_TRY(u64(key, std::numeric_limits<uint32_t>::max())));
  }

  Result<std::string> str(const char* key, std::size_t max_len) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_string()) return bad(key, "must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_len) return bad(key, "is longer than " + std::to_string(max_len) + " characters");
    return s;
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

  Result<ObjectName> object_name(const char* key) const {
    auto name = MCIMD_TRY(str(key, 64));
    if (!valid_object_name(name)) return bad(key, "must be 64 lower-case hex digits (an object's SHA-256)");
    return name;
  }

  Result<Fields> object(const char* key) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_object()) return bad(key, "must be an object");
    return Fields(*v, file_, prefix_ + key + ".", format_);
  }

  Result<const json*> array(const char* key) const {
    const json* v = MCIMD_TRY(member(key));
    if (!v->is_array()) return bad(key, "must be an array");
    return v;
  }

  // The i-th element of the array at key, which must be an object.
  Result<Fields> element(const char* key, const json& array, std::size_t i) const {
    const std::string name = std::string(key) + "[" + std::to_string(i) + "]";
    if (!array[i].is_object()) return bad(name, "must be an object");
    return Fields(array[i], file_, prefix_ + name + ".", format_);
  }

 private:
  const json& obj_;
  const std::string& file_;
  std::string prefix_;
  unsigned format_;
};

Result<BlobRef> decode_blob_ref(const Fields& parent, const char* key) {
  auto f = MCIMD_TRY(parent.object(key));
  MCIMD_CHECK(f.only({"public", "private"}));
  BlobRef r;
  r.public_area = MCIMD_TRY(f.object_name("public"));
  r.private_area = MCIMD_TRY(f.object_name("private"));
  return r;
}

// The SQN array under already validated parameters: 2^ind_bits entries, each a SEQ of
// 48 − ind_bits bits (TS 33.102 C.1.1: SQN = SEQ ‖ IND).
Result<std::vector<uint64_t>> decode_seq(const Fields& sqn, const aka::SqnParameters& params) {
  const json* seq = MCIMD_TRY(sqn.array("seq"));
  const std::size_t slots = std::size_t{1} << params.ind_bits;
  if (seq->size() != slots) return sqn.bad("seq", "must be an array of " + std::to_string(slots) + " integers");
  const uint64_t seq_limit = kSqnLimit >> params.ind_bits;
  std::vector<uint64_t> out;
  out.reserve(slots);
  for (std::size_t i = 0; i < slots; ++i) {
    const json& v = (*seq)[i];
    if (!v.is_number_unsigned() || v.get<uint64_t>() >= seq_limit)
      return sqn.bad("seq[" + std::to_string(i) + "]",
                     "must be an integer below 2^" + std::to_string(kSqnBits - params.ind_bits));
    out.push_back(v.get<uint64_t>());
  }
  if (auto restored = aka::SqnArray::restore(params, out); !restored) return sqn.bad("seq", restored.error().message);
  return out;
}

Result<ProfileRules> decode_rules(const Fields& parent) {
  auto f = MCIMD_TRY(parent.object("rules"));
  MCIMD_CHECK(f.only({"disable_allowed", "delete_allowed", "fallback_allowed", "locked_until"}));
  ProfileRules r;
  r.disable_allowed = MCIMD_TRY(f.boolean("disable_allowed"));
  r.delete_allowed = MCIMD_TRY(f.boolean("delete_allowed"));
  r.fallback_allowed = MCIMD_TRY(f.boolean("fallback_allowed"));
  if (!MCIMD_TRY(f.is_null("locked_until"))) r.locked_until = MCIMD_TRY(f.u64("locked_until", kMaxTime));
  return r;
}

Result<std::optional<PackageOrigin>> decode_origin(const Fields& parent) {
  if (MCIMD_TRY(parent.is_null("origin"))) return std::optional<PackageOrigin>();
  auto f = MCIMD_TRY(parent.object("origin"));
  MCIMD_CHECK(f.only({"package_id", "counter", "package_sha256"}));
  PackageOrigin o;
  o.package_id = MCIMD_TRY(f.str("package_id", kMaxPackageId));
  if (!valid_package_id(o.package_id)) return f.bad("package_id", "must be 1-64 characters of [A-Za-z0-9._-]");
  o.counter = MCIMD_TRY(f.u64("counter"));
  o.package_sha256 = MCIMD_TRY(f.base64url("package_sha256", kSha256Size));
  if (o.package_sha256.size() != kSha256Size) return f.bad("package_sha256", "must be 32 bytes");
  return std::optional<PackageOrigin>(std::move(o));
}

Status decode_lifecycle(const Fields& f, ProfileMetadata& m) {
  if (!MCIMD_TRY(f.is_null("deletion"))) {
    auto d = MCIMD_TRY(f.object("deletion"));
    MCIMD_CHECK(d.only({"nv_index", "value"}));
    DeletionBinding b;
    b.nv_index = MCIMD_TRY(d.u32("nv_index"));
    if ((b.nv_index >> 24) != 0x01) return d.bad("nv_index", "is not an NV index (0x01xxxxxx)");
    b.value = MCIMD_TRY(d.u64("value"));
    m.deletion = b;
  }
  if (!MCIMD_TRY(f.is_null("replaces"))) {
    m.replaces = MCIMD_TRY(f.str("replaces", kMaxId));
    if (!parse_profile_id(*m.replaces) || *m.replaces == m.id) return f.bad("replaces", "must be another \"p<index>\"");
  }
  m.command_counter = MCIMD_TRY(f.u64("command_counter"));
  if (!MCIMD_TRY(f.is_null("subscriber_key"))) {
    m.subscriber_key = MCIMD_TRY(f.base64url("subscriber_key", kMaxSubscriberKey));
    if (m.subscriber_key->empty()) return f.bad("subscriber_key", "is empty");
  }
  return {};
}

Result<ProfileEntry> decode_profile(const Fields& f) {
  if (f.format() >= 4)
    MCIMD_CHECK(f.only({"id", "index", "iccid", "imsi", "operator", "state", "class", "algorithm", "key_protection",
                        "amf", "authority", "sqn", "k", "opc", "rules", "origin", "deletion", "replaces",
                        "command_counter", "subscriber_key", "previous"}));
  else if (f.format() >= 3)
    MCIMD_CHECK(f.only({"id", "index", "iccid", "imsi", "operator", "state", "class", "algorithm", "key_protection",
                        "amf", "authority", "sqn", "k", "opc", "rules", "origin"}));
  else
    MCIMD_CHECK(f.only({"id", "index", "iccid", "imsi", "operator", "state", "class", "algorithm", "key_protection",
                        "amf", "authority", "sqn", "k", "opc"}));
  ProfileEntry e;
  ProfileMetadata& m = e.meta;
  m.id = MCIMD_TRY(f.str("id", kMaxId));
  m.index = MCIMD_TRY(f.u32("index"));
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
  m.authority = MCIMD_TRY(f.base64url("authority", kMaxAuthority));
  auto sqn = MCIMD_TRY(f.object("sqn"));
  MCIMD_CHECK(sqn.only({"ind_bits", "delta", "age_limit", "require_amf_separation", "seq"}));
  m.sqn.ind_bits = static_cast<unsigned>(MCIMD_TRY(sqn.u64("ind_bits", kMaxIndBits)));
  m.sqn.delta = MCIMD_TRY(sqn.u64("delta"));
  m.sqn.age_limit = MCIMD_TRY(sqn.u64("age_limit"));
  m.sqn.require_amf_separation = MCIMD_TRY(sqn.boolean("require_amf_separation"));
  if (auto problem = metadata_problem(m)) return f.bad(problem->field, problem->why);
  e.seq = MCIMD_TRY(decode_seq(sqn, m.sqn));
  e.k = MCIMD_TRY(decode_blob_ref(f, "k"));
  e.opc = MCIMD_TRY(decode_blob_ref(f, "opc"));
  if (f.format() >= 3) {
    m.rules = MCIMD_TRY(decode_rules(f));
    m.origin = MCIMD_TRY(decode_origin(f));
  }
  if (f.format() >= 4) {
    MCIMD_CHECK(decode_lifecycle(f, m));
    if (!MCIMD_TRY(f.is_null("previous"))) {
      auto prev = MCIMD_TRY(f.object("previous"));
      MCIMD_CHECK(prev.only({"k", "opc", "deletion", "algorithm", "key_protection"}));
      PreviousCredentials pc;
      if (!MCIMD_TRY(prev.is_null("deletion"))) {
        auto d = MCIMD_TRY(prev.object("deletion"));
        MCIMD_CHECK(d.only({"nv_index", "value"}));
        pc.deletion = DeletionBinding{MCIMD_TRY(d.u32("nv_index")), MCIMD_TRY(d.u64("value"))};
        if ((pc.deletion->nv_index >> 24) != 0x01) return d.bad("nv_index", "is not an NV index (0x01xxxxxx)");
      }
      pc.algorithm = MCIMD_TRY(prev.str("algorithm", 32));
      auto protection = key_protection_from_string(MCIMD_TRY(prev.str("key_protection", 16)));
      if (!protection) return prev.bad("key_protection", "must be \"tpm-aes\" or \"sealed\"");
      pc.key_protection = *protection;
      e.previous_k = MCIMD_TRY(decode_blob_ref(prev, "k"));
      e.previous_opc = MCIMD_TRY(decode_blob_ref(prev, "opc"));
      m.previous = pc;
    }
  }
  return e;
}

Result<std::optional<AttestationEntry>> decode_attestation(const Fields& state) {
  if (MCIMD_TRY(state.is_null("attestation"))) return std::optional<AttestationEntry>();
  auto f = MCIMD_TRY(state.object("attestation"));
  MCIMD_CHECK(f.only({"ak", "enrolled_ek_type"}));
  AttestationEntry a;
  a.ak = MCIMD_TRY(decode_blob_ref(f, "ak"));
  if (!MCIMD_TRY(f.is_null("enrolled_ek_type"))) {
    a.enrolled_ek_type = MCIMD_TRY(f.str("enrolled_ek_type", 3));
    if (!valid_ek_type(*a.enrolled_ek_type)) return f.bad("enrolled_ek_type", "must be \"ecc\", \"rsa\" or null");
  }
  return std::optional<AttestationEntry>(std::move(a));
}

Result<InstalledPackage> decode_installed(const Fields& f) {
  MCIMD_CHECK(f.only({"package_id", "package_sha256", "counter", "profile"}));
  InstalledPackage p;
  p.package_id = MCIMD_TRY(f.str("package_id", kMaxPackageId));
  if (!valid_package_id(p.package_id)) return f.bad("package_id", "must be 1-64 characters of [A-Za-z0-9._-]");
  p.package_sha256 = MCIMD_TRY(f.base64url("package_sha256", kSha256Size));
  if (p.package_sha256.size() != kSha256Size) return f.bad("package_sha256", "must be 32 bytes");
  p.counter = MCIMD_TRY(f.u64("counter"));
  p.profile_id = MCIMD_TRY(f.str("profile", kMaxId));
  if (!parse_profile_id(p.profile_id)) return f.bad("profile", "must be \"p<index>\"");
  return p;
}

Result<DeletionRecord> decode_deletion(const Fields& f) {
  MCIMD_CHECK(f.only({"iccid", "operator", "profile", "reason", "nv_index", "nv_value"}));
  DeletionRecord r;
  r.iccid = MCIMD_TRY(f.str("iccid", 20));
  r.operator_id = MCIMD_TRY(f.str("operator", 64));
  r.profile = MCIMD_TRY(f.u32("profile"));
  r.reason = MCIMD_TRY(f.str("reason", 32));
  if (!valid_deletion_reason(r.reason)) return f.bad("reason", "must be change-of-subscription, command or local");
  r.nv_index = MCIMD_TRY(f.u32("nv_index"));
  r.nv_value = MCIMD_TRY(f.u64("nv_value"));
  return r;
}

Status decode_deletions(const Fields& state, State& s) {
  const json* list = MCIMD_TRY(state.array("deletions"));
  if (list->size() > kMaxDeletionRecords)
    return state.bad("deletions", "lists more than " + std::to_string(kMaxDeletionRecords) + " deletions");
  for (std::size_t i = 0; i < list->size(); ++i)
    s.deletions.push_back(MCIMD_TRY(decode_deletion(MCIMD_TRY(state.element("deletions", *list, i)))));
  return {};
}

Status decode_provisioning(const Fields& state, State& s) {
  auto f = MCIMD_TRY(state.object("provisioning"));
  MCIMD_CHECK(f.only({"last_counter", "installed"}));
  s.last_package_counter = MCIMD_TRY(f.u64("last_counter"));
  const json* installed = MCIMD_TRY(f.array("installed"));
  if (installed->size() > kMaxInstalledPackages)
    return f.bad("installed", "lists more than " + std::to_string(kMaxInstalledPackages) + " packages");
  for (std::size_t i = 0; i < installed->size(); ++i) {
    auto p = MCIMD_TRY(decode_installed(MCIMD_TRY(f.element("installed", *installed, i))));
    if (p.counter > s.last_package_counter)
      return f.bad("installed[" + std::to_string(i) + "].counter", "is above last_counter");
    s.installed.push_back(std::move(p));
  }
  return {};
}

Result<State> decode_state(const Fields& f) {
  if (f.format() >= 4)
    MCIMD_CHECK(f.only({"generation", "boot_counts", "srk", "next_index", "active", "profiles", "attestation",
                        "provisioning", "deletions"}));
  else if (f.format() >= 3)
    MCIMD_CHECK(f.only({"generation", "boot_counts", "srk", "next_index", "active", "profiles", "attestation",
                        "provisioning"}));
  else
    MCIMD_CHECK(f.only({"generation", "boot_counts", "srk", "next_index", "active", "profiles", "attestation"}));
  State s;
  s.generation = MCIMD_TRY(f.u64("generation"));
  auto boot = MCIMD_TRY(f.object("boot_counts"));
  MCIMD_CHECK(boot.only({"reset_count", "restart_count"}));
  s.boot_counts.reset_count = MCIMD_TRY(boot.u32("reset_count"));
  s.boot_counts.restart_count = MCIMD_TRY(boot.u32("restart_count"));
  if (!MCIMD_TRY(f.is_null("srk"))) {
    s.srk = MCIMD_TRY(f.base64url("srk", kMaxBlob));
    if (s.srk->empty()) return f.bad("srk", "is empty");
  }
  s.next_index = MCIMD_TRY(f.u32("next_index"));
  if (!MCIMD_TRY(f.is_null("active"))) {
    s.active = MCIMD_TRY(f.str("active", kMaxId));
    if (!parse_profile_id(*s.active)) return f.bad("active", "must be null or \"p<index>\"");
  }
  const json* profiles = MCIMD_TRY(f.array("profiles"));
  for (std::size_t i = 0; i < profiles->size(); ++i)
    s.profiles.push_back(MCIMD_TRY(decode_profile(MCIMD_TRY(f.element("profiles", *profiles, i)))));
  s.attestation = MCIMD_TRY(decode_attestation(f));
  if (f.format() >= 3) MCIMD_CHECK(decode_provisioning(f, s));
  if (f.format() >= 4) MCIMD_CHECK(decode_deletions(f, s));
  return s;
}

json blob_json(const BlobRef& r) { return {{"public", r.public_area}, {"private", r.private_area}}; }

json profile_json(const ProfileEntry& e) {
  const ProfileMetadata& m = e.meta;
  return {{"id", m.id},
          {"index", m.index},
          {"iccid", m.iccid},
          {"imsi", m.imsi},
          {"operator", m.operator_id},
          {"state", std::string(to_string(m.state))},
          {"class", std::string(to_string(m.profile_class))},
          {"algorithm", m.algorithm},
          {"key_protection", std::string(to_string(m.key_protection))},
          {"amf", base64url_encode(m.amf)},
          {"authority", base64url_encode(m.authority)},
          {"sqn",
           {{"ind_bits", m.sqn.ind_bits},
            {"delta", m.sqn.delta},
            {"age_limit", m.sqn.age_limit},
            {"require_amf_separation", m.sqn.require_amf_separation},
            {"seq", e.seq}}},
          {"k", blob_json(e.k)},
          {"opc", blob_json(e.opc)},
          {"rules",
           {{"disable_allowed", m.rules.disable_allowed},
            {"delete_allowed", m.rules.delete_allowed},
            {"fallback_allowed", m.rules.fallback_allowed},
            {"locked_until", m.rules.locked_until ? json(*m.rules.locked_until) : json(nullptr)}}},
          {"origin", m.origin ? json{{"package_id", m.origin->package_id},
                                     {"counter", m.origin->counter},
                                     {"package_sha256", base64url_encode(m.origin->package_sha256)}}
                              : json(nullptr)},
          {"deletion", m.deletion ? json{{"nv_index", m.deletion->nv_index}, {"value", m.deletion->value}}
                                  : json(nullptr)},
          {"replaces", m.replaces ? json(*m.replaces) : json(nullptr)},
          {"command_counter", m.command_counter},
          {"subscriber_key", m.subscriber_key ? json(base64url_encode(*m.subscriber_key)) : json(nullptr)},
          {"previous", m.previous && e.previous_k && e.previous_opc
                           ? json{{"k", blob_json(*e.previous_k)},
                                  {"opc", blob_json(*e.previous_opc)},
                                  {"deletion", m.previous->deletion ? json{{"nv_index", m.previous->deletion->nv_index},
                                                                           {"value", m.previous->deletion->value}}
                                                                    : json(nullptr)},
                                  {"algorithm", m.previous->algorithm},
                                  {"key_protection", std::string(to_string(m.previous->key_protection))}}
                           : json(nullptr)}};
}

json state_json(const State& s) {
  json profiles = json::array();
  for (const auto& e : s.profiles) profiles.push_back(profile_json(e));
  json installed = json::array();
  for (const auto& p : s.installed)
    installed.push_back({{"package_id", p.package_id},
                         {"package_sha256", base64url_encode(p.package_sha256)},
                         {"counter", p.counter},
                         {"profile", p.profile_id}});
  json deletions = json::array();
  for (const auto& d : s.deletions)
    deletions.push_back({{"iccid", d.iccid},
                         {"operator", d.operator_id},
                         {"profile", d.profile},
                         {"reason", d.reason},
                         {"nv_index", d.nv_index},
                         {"nv_value", d.nv_value}});
  json attestation = nullptr;
  if (s.attestation)
    attestation = {{"ak", blob_json(s.attestation->ak)},
                   {"enrolled_ek_type", s.attestation->enrolled_ek_type ? json(*s.attestation->enrolled_ek_type)
                                                                         : json(nullptr)}};
  return {{"generation", s.generation},
          {"boot_counts",
           {{"reset_count", s.boot_counts.reset_count}, {"restart_count", s.boot_counts.restart_count}}},
          {"srk", s.srk ? json(base64url_encode(*s.srk)) : json(nullptr)},
          {"next_index", s.next_index},
          {"active", s.active ? json(*s.active) : json(nullptr)},
          {"profiles", std::move(profiles)},
          {"attestation", std::move(attestation)},
          {"provisioning", {{"last_counter", s.last_package_counter}, {"installed", std::move(installed)}}},
          {"deletions", std::move(deletions)}};
}

}  // namespace

std::optional<uint32_t> parse_profile_id(std::string_view id) {
  if (id.size() < 2 || id.size() > kMaxId || id[0] != 'p') return std::nullopt;
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

bool valid_object_name(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool valid_ek_type(std::string_view s) { return s == "ecc" || s == "rsa"; }

bool valid_deletion_reason(std::string_view s) {
  return s == "change-of-subscription" || s == "command" || s == "local";
}

bool valid_package_id(std::string_view s) {
  if (s.empty() || s.size() > kMaxPackageId) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

bool same_parameters(const aka::SqnParameters& a, const aka::SqnParameters& b) {
  return a.ind_bits == b.ind_bits && a.delta == b.delta && a.age_limit == b.age_limit &&
         a.require_amf_separation == b.require_amf_separation;
}

Status validate_metadata(const ProfileMetadata& m, Code code, std::string_view where) {
  if (auto problem = metadata_problem(m))
    return fail(code, std::string(where) + ": field '" + problem->field + "' " + problem->why);
  return {};
}

std::optional<std::string> invariant_violation(const State& s) {
  std::set<std::string> iccids;
  for (std::size_t i = 0; i < s.profiles.size(); ++i) {
    const ProfileMetadata& m = s.profiles[i].meta;
    if (i > 0 && m.index <= s.profiles[i - 1].meta.index)
      return "profile " + m.id + " is out of ascending index order or listed twice";
    if (m.index >= s.next_index) return "profile " + m.id + " has an index not below next_index";
    if (!iccids.insert(m.iccid).second) return "profile " + m.id + " repeats another profile's ICCID " + m.iccid;
  }
  std::set<uint32_t> counters;
  for (const auto& e : s.profiles) {
    const ProfileMetadata& m = e.meta;
    if (m.replaces && std::none_of(s.profiles.begin(), s.profiles.end(),
                                   [&](const ProfileEntry& o) { return o.meta.id == *m.replaces; }))
      return "profile " + m.id + " replaces " + *m.replaces + ", which does not exist";
    if (m.deletion && !counters.insert(m.deletion->nv_index).second)
      return "profile " + m.id + " shares its deletion counter with another profile";
    if (m.previous && m.previous->deletion && !counters.insert(m.previous->deletion->nv_index).second)
      return "profile " + m.id + "'s previous credentials share a deletion counter";
    if (m.previous.has_value() != (e.previous_k.has_value() && e.previous_opc.has_value()))
      return "profile " + m.id + " has previous credentials without their blobs";
  }
  if (s.active) {
    auto it = std::find_if(s.profiles.begin(), s.profiles.end(),
                           [&](const ProfileEntry& e) { return e.meta.id == *s.active; });
    if (it == s.profiles.end()) return "the active profile " + *s.active + " does not exist";
    if (it->meta.state != ProfileState::Enabled) return "the active profile " + *s.active + " is disabled";
  }
  return std::nullopt;
}

std::vector<ObjectName> referenced_objects(const State& s) {
  std::set<ObjectName> names;
  for (const auto& e : s.profiles)
    for (const BlobRef* r : {&e.k, &e.opc}) names.insert({r->public_area, r->private_area});
  for (const auto& e : s.profiles)
    for (const auto* r : {&e.previous_k, &e.previous_opc})
      if (*r) names.insert({(*r)->public_area, (*r)->private_area});
  if (s.attestation) names.insert({s.attestation->ak.public_area, s.attestation->ak.private_area});
  return {names.begin(), names.end()};
}

std::string canonical_state(const State& s) { return state_json(s).dump(); }

Bytes mac_input(std::string_view canonical) {
  // Sized once and copied into: g++ 12 at -O2 reports a false -Warray-bounds for the
  // construct-then-insert form over this constant.
  Bytes out(kMacLabel.size() + canonical.size());
  std::copy(kMacLabel.begin(), kMacLabel.end(), out.begin());
  std::copy(canonical.begin(), canonical.end(), out.begin() + static_cast<std::ptrdiff_t>(kMacLabel.size()));
  return out;
}

Result<std::string> encode_store(const State& s, Anchor& anchor) {
  json state = state_json(s);
  auto mac = MCIMD_TRY(anchor.mac(mac_input(state.dump())));
  if (mac.size() != kMacSize)
    return fail(Code::Internal, "The store key's MAC has " + std::to_string(mac.size()) + " bytes, not " +
                                    std::to_string(kMacSize));
  json doc = {{"format", kFormat}, {"state", std::move(state)}, {"mac", base64url_encode(mac)}};
  return doc.dump() + "\n";
}

Result<Document> decode_store(std::string_view text, const std::string& file) {
  json j = json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Code::StoreCorrupt, file + ": not valid JSON (truncated or damaged)");
  if (!j.is_object()) return fail(Code::StoreCorrupt, file + ": not a JSON object");
  Fields f(j, file);
  // The format first: an older layout has other fields, and saying so is the useful answer.
  const uint64_t format = MCIMD_TRY(f.u64("format"));
  if (format < kOldestReadableFormat || format > kFormat)
    return fail(Code::Unsupported, file + ": format " + std::to_string(format) + "; this mcimd reads formats " +
                                       std::to_string(kOldestReadableFormat) + " to " + std::to_string(kFormat) +
                                       (format < kOldestReadableFormat
                                            ? " (an earlier version's layout, which it does not convert)"
                                            : " (a later version's layout)"));
  MCIMD_CHECK(f.only({"format", "state", "mac"}));
  Document doc;
  Fields versioned(j, file, {}, static_cast<unsigned>(format));
  doc.state = MCIMD_TRY(decode_state(MCIMD_TRY(versioned.object("state"))));
  doc.canonical = MCIMD_TRY(f.member("state"))->dump();
  if (auto it = j.find("mac"); it != j.end() && it->is_string()) {
    auto mac = base64url_decode(it->get_ref<const std::string&>(), "mac");
    if (mac && mac->size() == kMacSize) doc.mac = std::move(*mac);
  }
  return doc;
}

Status verify_mac(const Document& doc, Anchor& anchor, const std::string& file) {
  if (!doc.mac)
    return fail(Code::StoreTampered, file + ": field 'mac' is missing or not a " + std::to_string(kMacSize) +
                                         "-byte base64url MAC: the state is not authenticated, so none of it is used");
  auto expected = MCIMD_TRY(anchor.mac(mac_input(doc.canonical)));
  if (!equal_ct(expected, *doc.mac))
    return fail(Code::StoreTampered, file + ": the MAC over the state does not verify (changed outside mcimd, or "
                                            "MAC'd under another TPM's store key), so none of it is used");
  return {};
}

}  // namespace mcimd::store::detail
