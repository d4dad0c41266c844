// The remote provisioning messages as JSON (protocol/provisioning.hpp): writers, and parsers as
// strict as the evidence's. Every limit below is the one docs/protocol.md lists.
#include "protocol/provisioning.hpp"

#include <cstdio>

#include "protocol/json_fields.hpp"

namespace mcimd::protocol {

using namespace detail;

namespace {

constexpr std::string_view kSessionRequestFormat = "mcimd-provisioning-session-request-1";
constexpr std::string_view kSessionFormat = "mcimd-provisioning-session-1";
constexpr std::string_view kPackageRequestFormat = "mcimd-package-request-1";
constexpr std::string_view kPackageFormat = "mcimd-package-1";
constexpr std::string_view kReceiptBodyFormat = "mcimd-install-receipt-body-1";
constexpr std::string_view kInstallReceiptFormat = "mcimd-install-receipt-1";
constexpr std::string_view kErrorFormat = "mcimd-error-1";

constexpr std::size_t kMaxAlgorithmName = 32;
constexpr std::size_t kMaxAlgorithms = 16;
constexpr std::size_t kMaxAlgorithmParameters = 4096;  // JSON text of the members besides "name"
constexpr std::size_t kMaxErrorMessage = 4096;
constexpr std::size_t kMaxReceiptBody = 4096;
constexpr uint64_t kSqnLimit = uint64_t{1} << 48;      // TS 33.102 C.1: SQN is 48 bits
constexpr uint64_t kMaxSqnDelta = (uint64_t{1} << 43) - 1;
constexpr uint64_t kMaxIndBits = 10;

Status check_algorithm_name(std::string_view v, const std::string& what) {
  if (v.empty() || v.size() > kMaxAlgorithmName ||
      !all_of(v, [](char c) { return in(c, 'a', 'z') || is_digit(c) || c == '-'; }))
    return fail(Code::InvalidArgument, what + " must be 1-" + std::to_string(kMaxAlgorithmName) +
                                           " characters of [a-z0-9-]");
  return {};
}

Status check_class(std::string_view v, const std::string& what) {
  if (v != "operational" && v != "bootstrap")
    return fail(Code::InvalidArgument, what + " must be \"operational\" or \"bootstrap\"");
  return {};
}

// --- readers -----------------------------------------------------------------------------------------
Result<std::string> read_class(Reader& r, std::string_view field) {
  auto v = MCIMD_TRY(r.string(field));
  MCIMD_CHECK(check_class(v, r.name(field)));
  return v;
}

Result<uint64_t> read_bounded(Reader& r, std::string_view field, uint64_t min, uint64_t max) {
  auto v = MCIMD_TRY(r.unsigned_integer(field, max));
  if (v < min) return fail(Code::InvalidArgument, r.name(field) + " is below " + std::to_string(min));
  return v;
}

// --- package header parts ------------------------------------------------------------------------------
json import_blob_value(const ImportBlob& b) {
  return {{"public", b64(b.public_area)}, {"duplicate", b64(b.duplicate)}, {"seed", b64(b.seed)}};
}

Result<ImportBlob> read_import_blob(Reader& parent, std::string_view field) {
  auto r = MCIMD_TRY(parent.member(field));
  ImportBlob b;
  b.public_area = MCIMD_TRY(read_public(r, "public"));
  b.duplicate = MCIMD_TRY((read_tpm<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Unmarshal>(r, "duplicate")));
  b.seed = MCIMD_TRY((read_tpm<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal>(r, "seed")));
  MCIMD_CHECK(r.finish());
  return b;
}

json sqn_value(const SqnSettings& s) {
  return {{"ind_bits", s.ind_bits},
          {"delta", s.delta},
          {"age_limit", s.age_limit},
          {"require_amf_separation", s.require_amf_separation},
          {"initial", s.initial}};
}

// TS 33.102 Annex C: IND is 1–10 bits of the 48-bit SQN; Δ bounds how far ahead a SEQ may jump.
Result<SqnSettings> read_sqn(Reader& parent) {
  auto r = MCIMD_TRY(parent.member("sqn"));
  SqnSettings s;
  s.ind_bits = static_cast<unsigned>(MCIMD_TRY(read_bounded(r, "ind_bits", 1, kMaxIndBits)));
  s.delta = MCIMD_TRY(read_bounded(r, "delta", 1, kMaxSqnDelta));
  s.age_limit = MCIMD_TRY(r.unsigned_integer("age_limit", kSqnLimit - 1));
  s.require_amf_separation = MCIMD_TRY(r.boolean("require_amf_separation"));
  s.initial = MCIMD_TRY(r.unsigned_integer("initial", kSqnLimit - 1));
  MCIMD_CHECK(r.finish());
  return s;
}

json rules_value(const ProfileRules& p) {
  json j = {{"disable_allowed", p.disable_allowed},
            {"delete_allowed", p.delete_allowed},
            {"locked_until", nullptr},
            {"fallback_allowed", p.fallback_allowed}};
  if (p.locked_until) j["locked_until"] = format_timestamp(*p.locked_until);
  return j;
}

Result<ProfileRules> read_rules(Reader& parent) {
  auto r = MCIMD_TRY(parent.member("rules"));
  ProfileRules p;
  p.disable_allowed = MCIMD_TRY(r.boolean("disable_allowed"));
  p.delete_allowed = MCIMD_TRY(r.boolean("delete_allowed"));
  const json* locked = MCIMD_TRY(r.get("locked_until", true));
  if (!locked->is_null()) p.locked_until = MCIMD_TRY(read_time(*locked, r.name("locked_until")));
  p.fallback_allowed = MCIMD_TRY(r.boolean("fallback_allowed"));
  MCIMD_CHECK(r.finish());
  return p;
}

json deletion_value(const DeletionBinding& d) { return {{"nv_index", d.nv_index}, {"value", d.value}}; }

Result<DeletionBinding> read_deletion(Reader& parent) {
  auto r = MCIMD_TRY(parent.member("deletion"));
  DeletionBinding d;
  const uint64_t index = MCIMD_TRY(r.unsigned_integer("nv_index"));
  // TPM 2.0 Part 2 §13.1: NV index handles are 0x01xxxxxx.
  if ((index >> 24) != 0x01) return fail(Code::InvalidArgument, r.name("nv_index") + " is not an NV index (0x01xxxxxx)");
  d.nv_index = static_cast<uint32_t>(index);
  d.value = MCIMD_TRY(r.unsigned_integer("value"));
  MCIMD_CHECK(r.finish());
  return d;
}

// "algorithm": {"name": …, anything else}. What is not the name is kept as JSON text so the
// installer can refuse it by name; nlohmann objects are ordered by key, so the text is canonical.
json algorithm_value(const PackageHeader& h) {
  json a = json::object();
  if (h.algorithm_parameters) {
    json extra = json::parse(*h.algorithm_parameters, nullptr, /*allow_exceptions=*/false);
    // Text that is not an object (only a hand-made header holds such) still travels, and is refused.
    if (!extra.is_object()) extra = json{{"parameters", *h.algorithm_parameters}};
    a = std::move(extra);
  }
  a["name"] = h.algorithm;
  return a;
}

Status read_algorithm(Reader& r, PackageHeader& h) {
  const json* a = MCIMD_TRY(r.get("algorithm", true));
  const std::string where = r.name("algorithm");
  if (!a->is_object()) return fail(Code::InvalidArgument, where + " must be a JSON object");
  auto name = a->find("name");
  if (name == a->end()) return fail(Code::InvalidArgument, "Missing field " + where + ".name");
  if (!name->is_string()) return fail(Code::InvalidArgument, where + ".name must be a string");
  h.algorithm = name->get<std::string>();
  MCIMD_CHECK(check_algorithm_name(h.algorithm, where + ".name"));
  json extra = *a;
  extra.erase("name");
  h.algorithm_parameters.reset();
  if (!extra.empty()) {
    auto text = dump(extra);
    if (text.size() > kMaxAlgorithmParameters)
      return fail(Code::InvalidArgument, where + " has more than " + std::to_string(kMaxAlgorithmParameters) +
                                             " bytes of parameters");
    h.algorithm_parameters = std::move(text);
  }
  return {};
}

// "amf": exactly four hex digits (TS 33.102 §6.3.2: 16 bits).
Result<std::array<uint8_t, 2>> read_amf(Reader& r) {
  auto v = MCIMD_TRY(r.string("amf"));
  if (v.size() != 4 || !all_of(v, is_hex)) return fail(Code::InvalidArgument, r.name("amf") + " must be 4 hex digits");
  auto b = MCIMD_TRY(from_hex(v, r.name("amf"), 2));
  return std::array<uint8_t, 2>{b[0], b[1]};
}

// --- package request parts ------------------------------------------------------------------------------
Result<std::vector<std::string>> read_algorithms(Reader& r) {
  const json* a = MCIMD_TRY(r.get("algorithms", true));
  const std::string where = r.name("algorithms");
  if (!a->is_array() || a->empty() || a->size() > kMaxAlgorithms)
    return fail(Code::InvalidArgument, where + " must be an array of 1-" + std::to_string(kMaxAlgorithms) + " names");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!(*a)[i].is_string()) return fail(Code::InvalidArgument, at + " must be a string");
    auto name = (*a)[i].get<std::string>();
    MCIMD_CHECK(check_algorithm_name(name, at));
    for (const auto& seen : out)
      if (seen == name) return fail(Code::InvalidArgument, at + " repeats an algorithm");
    out.push_back(std::move(name));
  }
  return out;
}

Result<Certification> read_certification(Reader& parent) {
  auto r = MCIMD_TRY(parent.member("srk_certification"));
  Certification c;
  c.message = MCIMD_TRY(read_attest(r, "message", TPM2_ST_ATTEST_CERTIFY, "TPM_ST_ATTEST_CERTIFY"));
  c.signature = MCIMD_TRY(read_signature(r, "signature"));
  MCIMD_CHECK(r.finish());
  return c;
}

bool known_code(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(Code::Internal); ++c)
    if (code_name(static_cast<Code>(c)) == name) return true;
  return false;
}

}  // namespace

// --- timestamps ------------------------------------------------------------------------------------------
Result<Timestamp> parse_timestamp(std::string_view t) {
  using namespace std::chrono;
  auto fields_ok = [&] {
    if (t.size() != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != 'Z')
      return false;
    for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u, 11u, 12u, 14u, 15u, 17u, 18u})
      if (!is_digit(t[i])) return false;
    return true;
  };
  if (!fields_ok()) return fail(Code::InvalidArgument, "Not an RFC 3339 UTC time of the form YYYY-MM-DDTHH:MM:SSZ");
  auto num = [&](std::size_t at, std::size_t n) {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) v = v * 10 + (t[i] - '0');
    return v;
  };
  const year_month_day date{year{num(0, 4)}, month{static_cast<unsigned>(num(5, 2))},
                            day{static_cast<unsigned>(num(8, 2))}};
  const int h = num(11, 2), m = num(14, 2), s = num(17, 2);
  // No leap second: POSIX time, which the TPM's clock and the operator's database keep, has none.
  if (!date.ok() || h > 23 || m > 59 || s > 59)
    return fail(Code::InvalidArgument, "Not a valid date and time of day (RFC 3339, UTC)");
  return Timestamp{sys_days{date}.time_since_epoch() + hours{h} + minutes{m} + seconds{s}};
}

std::string format_timestamp(Timestamp t) {
  using namespace std::chrono;
  const auto days = floor<std::chrono::days>(t);
  const year_month_day date{days};
  const hh_mm_ss time{t - days};
  char out[32];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return out;
}

// --- session ---------------------------------------------------------------------------------------------
std::string to_json(const ProvisioningSessionRequest& m) {
  json j = {{"format", kSessionRequestFormat}, {"device", m.device}};
  if (m.subscription) j["subscription"] = *m.subscription;
  return dump(j);
}

Result<ProvisioningSessionRequest> session_request_from_json(std::string_view text) {
  return read_document<ProvisioningSessionRequest>(
      text, "session_request", kMaxProvisioningMessageSize, [](Reader& r) -> Result<ProvisioningSessionRequest> {
        MCIMD_CHECK(r.format(kSessionRequestFormat));
        ProvisioningSessionRequest m;
        m.device = MCIMD_TRY(read_device(r, "device"));
        if (const json* s = MCIMD_TRY(r.get("subscription", false))) {
          if (!s->is_string()) return fail(Code::InvalidArgument, r.name("subscription") + " must be a string");
          m.subscription = s->get<std::string>();
          MCIMD_CHECK(check_id(*m.subscription, r.name("subscription"), /*dot=*/true));
        }
        return m;
      });
}

std::string to_json(const ProvisioningSession& m) {
  return dump({{"format", kSessionFormat},
               {"session", m.session},
               {"nonce", b64(m.nonce)},
               {"expires", format_timestamp(m.expires)}});
}

Result<ProvisioningSession> session_from_json(std::string_view text) {
  return read_document<ProvisioningSession>(text, "session", kMaxProvisioningMessageSize,
                                            [](Reader& r) -> Result<ProvisioningSession> {
                                              MCIMD_CHECK(r.format(kSessionFormat));
                                              ProvisioningSession m;
                                              m.session = MCIMD_TRY(read_id(r, "session", /*dot=*/false));
                                              m.nonce = MCIMD_TRY(r.fixed_binary("nonce", kProvisioningNonceSize));
                                              m.expires = MCIMD_TRY(read_time(r, "expires"));
                                              return m;
                                            });
}

// --- package request ---------------------------------------------------------------------------------------
std::string to_json(const PackageRequest& m) {
  json j = {{"format", kPackageRequestFormat},
            {"session", m.session},
            {"device", m.device},
            {"operator_nonce", b64(m.operator_nonce)},
            {"device_nonce", b64(m.device_nonce)},
            {"counter", m.counter},
            {"srk_public", b64(m.srk_public)},
            {"srk_certification",
             {{"message", b64(m.srk_certification.message)}, {"signature", b64(m.srk_certification.signature)}}},
            {"authority", b64(m.authority)},
            {"algorithms", m.algorithms},
            {"evidence", evidence_value(m.evidence)},
            {"deletion", deletion_value(m.deletion)}};
  return dump(j);
}

Result<PackageRequest> package_request_from_json(std::string_view text) {
  return read_document<PackageRequest>(
      text, "package_request", kMaxDocumentSize, [](Reader& r) -> Result<PackageRequest> {
        MCIMD_CHECK(r.format(kPackageRequestFormat));
        PackageRequest m;
        m.session = MCIMD_TRY(read_id(r, "session", /*dot=*/false));
        m.device = MCIMD_TRY(read_device(r, "device"));
        m.operator_nonce = MCIMD_TRY(r.fixed_binary("operator_nonce", kProvisioningNonceSize));
        m.device_nonce = MCIMD_TRY(r.fixed_binary("device_nonce", kProvisioningNonceSize));
        m.counter = MCIMD_TRY(r.unsigned_integer("counter"));
        m.srk_public = MCIMD_TRY(read_public(r, "srk_public"));
        m.srk_certification = MCIMD_TRY(read_certification(r));
        m.authority = MCIMD_TRY(read_public(r, "authority"));
        m.algorithms = MCIMD_TRY(read_algorithms(r));
        const json* evidence = MCIMD_TRY(r.get("evidence", true));
        m.evidence = MCIMD_TRY(read_evidence(*evidence, r.name("evidence")));
        // The evidence answers the session's challenge: any other nonce is another session's.
        if (m.evidence.nonce != m.operator_nonce)
          return fail(Code::InvalidArgument, r.name("evidence") + ".nonce is not " + r.name("operator_nonce"));
        m.deletion = MCIMD_TRY(read_deletion(r));
        return m;
      });
}

// --- package header ----------------------------------------------------------------------------------------
std::string to_json(const PackageHeader& m) {
  json j = {{"format", kPackageFormat},
            {"package_id", m.package_id},
            {"device", m.device},
            {"device_nonce", b64(m.device_nonce)},
            {"counter", m.counter},
            {"issued", format_timestamp(m.issued)},
            {"expires", format_timestamp(m.expires)},
            {"operator_id", m.operator_id},
            {"iccid", m.iccid},
            {"imsi", m.imsi},
            {"class", m.profile_class},
            {"algorithm", algorithm_value(m)},
            {"amf", to_hex(m.amf)},
            {"sqn", sqn_value(m.sqn)},
            {"rules", rules_value(m.rules)},
            {"srk_name", b64(m.srk_name)},
            {"authority", b64(m.authority)},
            {"k", import_blob_value(m.k)},
            {"opc", import_blob_value(m.opc)},
            {"deletion", deletion_value(m.deletion)},
            {"subscriber_key", m.subscriber_key ? json(b64(*m.subscriber_key)) : json(nullptr)},
            {"rekey", m.rekey}};
  return dump(j);
}

Result<PackageHeader> package_header_from_json(std::string_view text) {
  return read_document<PackageHeader>(
      text, "package", kMaxPackageHeaderSize, [](Reader& r) -> Result<PackageHeader> {
        MCIMD_CHECK(r.format(kPackageFormat));
        PackageHeader m;
        m.package_id = MCIMD_TRY(read_id(r, "package_id", /*dot=*/true));
        m.device = MCIMD_TRY(read_device(r, "device"));
        m.device_nonce = MCIMD_TRY(r.fixed_binary("device_nonce", kProvisioningNonceSize));
        m.counter = MCIMD_TRY(r.unsigned_integer("counter"));
        m.issued = MCIMD_TRY(read_time(r, "issued"));
        m.expires = MCIMD_TRY(read_time(r, "expires"));
        m.operator_id = MCIMD_TRY(read_operator_id(r, "operator_id"));
        m.iccid = MCIMD_TRY(read_iccid(r, "iccid"));
        m.imsi = MCIMD_TRY(r.string("imsi"));
        MCIMD_CHECK(check_digits(m.imsi, r.name("imsi"), 6, 15));  // TS 23.003 §2.2: MCC+MNC+MSIN ≤ 15
        m.profile_class = MCIMD_TRY(read_class(r, "class"));
        MCIMD_CHECK(read_algorithm(r, m));
        m.amf = MCIMD_TRY(read_amf(r));
        m.sqn = MCIMD_TRY(read_sqn(r));
        m.rules = MCIMD_TRY(read_rules(r));
        m.srk_name = MCIMD_TRY(r.binary("srk_name", 2 + 64));
        MCIMD_CHECK(check_tpm_name(m.srk_name, r.name("srk_name")));
        m.authority = MCIMD_TRY(read_public(r, "authority"));
        m.k = MCIMD_TRY(read_import_blob(r, "k"));
        m.opc = MCIMD_TRY(read_import_blob(r, "opc"));
        m.deletion = MCIMD_TRY(read_deletion(r));
        const json* subscriber = MCIMD_TRY(r.get("subscriber_key", true));
        if (!subscriber->is_null()) {
          // A P-256 SubjectPublicKeyInfo is 91 bytes in DER; the key itself is checked where used.
          m.subscriber_key = MCIMD_TRY(r.binary("subscriber_key", 512));
          if (m.subscriber_key->empty()) return fail(Code::InvalidArgument, r.name("subscriber_key") + " is empty");
        }
        m.rekey = MCIMD_TRY(r.boolean("rekey"));
        return m;
      });
}

// --- install receipt ---------------------------------------------------------------------------------------
std::string to_json(const ReceiptBody& m) {
  return dump({{"format", kReceiptBodyFormat},
               {"package_id", m.package_id},
               {"device", m.device},
               {"counter", m.counter},
               {"package_sha256", b64(m.package_sha256)},
               {"iccid", m.iccid},
               {"profile", m.profile},
               {"class", m.profile_class}});
}

Result<ReceiptBody> receipt_body_from_json(std::string_view text) {
  return read_document<ReceiptBody>(text, "receipt_body", kMaxReceiptBody, [](Reader& r) -> Result<ReceiptBody> {
    MCIMD_CHECK(r.format(kReceiptBodyFormat));
    ReceiptBody m;
    m.package_id = MCIMD_TRY(read_id(r, "package_id", /*dot=*/true));
    m.device = MCIMD_TRY(read_device(r, "device"));
    m.counter = MCIMD_TRY(r.unsigned_integer("counter"));
    m.package_sha256 = MCIMD_TRY(r.fixed_binary("package_sha256", 32));
    m.iccid = MCIMD_TRY(read_iccid(r, "iccid"));
    m.profile = static_cast<uint32_t>(MCIMD_TRY(r.unsigned_integer("profile", UINT32_MAX)));
    m.profile_class = MCIMD_TRY(read_class(r, "class"));
    return m;
  });
}

std::string to_json(const InstallReceipt& m) { return quoted_document_json(m, kInstallReceiptFormat); }

Result<InstallReceipt> install_receipt_from_json(std::string_view text) {
  return quoted_document_from_json<InstallReceipt>(text, "install_receipt", kInstallReceiptFormat, kMaxReceiptBody,
                                                   receipt_body_from_json);
}

// --- errors --------------------------------------------------------------------------------------------------
std::string to_json(const ProtocolError& m) {
  return dump({{"format", kErrorFormat}, {"code", m.code}, {"message", m.message}});
}

Result<ProtocolError> protocol_error_from_json(std::string_view text) {
  return read_document<ProtocolError>(text, "error", kMaxProvisioningMessageSize, [](Reader& r) -> Result<ProtocolError> {
    MCIMD_CHECK(r.format(kErrorFormat));
    ProtocolError m;
    m.code = MCIMD_TRY(r.string("code"));
    if (!known_code(m.code)) return fail(Code::InvalidArgument, r.name("code") + " is not an mcimd error name");
    m.message = MCIMD_TRY(r.string("message"));
    // The agent logs the operator's message: no control characters, so no forged log lines.
    if (m.message.size() > kMaxErrorMessage ||
        !all_of(m.message, [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; }))
      return fail(Code::InvalidArgument, r.name("message") + " must be at most " + std::to_string(kMaxErrorMessage) +
                                             " bytes without control characters");
    return m;
  });
}

}  // namespace mcimd::protocol
