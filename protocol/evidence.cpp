// Evidence and enrolment documents as JSON, and the tpm2-tools export of a quote.
#include "protocol/evidence.hpp"

#include <algorithm>
#include <charconv>

#include "common/file.hpp"
#include "protocol/json_fields.hpp"
#include "protocol/quote.hpp"

namespace mcimd::protocol {

using namespace detail;

namespace {

constexpr std::string_view kEvidenceFormat = "mcimd-evidence-1";
constexpr std::string_view kEnrolmentRequestFormat = "mcimd-enrolment-request-1";
constexpr std::string_view kCredentialChallengeFormat = "mcimd-credential-challenge-1";
constexpr std::string_view kPlatformReportFormat = "mcimd-platform-report-1";
constexpr std::size_t kMaxReportChecks = 4096;
constexpr std::size_t kMaxReportText = 4096;
constexpr unsigned kPcrCount = 24;  // PC Client Platform TPM Profile §4.6

Result<unsigned> pcr_index(const std::string& key, const std::string& where) {
  unsigned index = 0;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
  if (key.empty() || ec != std::errc() || end != key.data() + key.size() || index >= kPcrCount ||
      (key.size() > 1 && key[0] == '0'))
    return fail(Code::InvalidArgument, where + " has key '" + key + "', not a PCR index 0-23");
  return index;
}

Result<std::vector<PcrBank>> read_pcrs(const json& j, const std::string& where) {
  if (!j.is_array()) return fail(Code::InvalidArgument, where + " must be an array");
  if (j.empty()) return fail(Code::InvalidArgument, where + " lists no PCR bank");
  if (j.size() > 16) return fail(Code::InvalidArgument, where + " lists more than 16 PCR banks");
  std::vector<PcrBank> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    auto r = MCIMD_TRY(Reader::object(j[i], at));
    PcrBank bank;
    bank.bank = MCIMD_TRY(r.string("bank"));
    auto size = digest_size(bank.bank);
    if (!size)
      return fail(Code::InvalidArgument, r.name("bank") + " is '" + bank.bank +
                                             "', expected sha1, sha256, sha384 or sha512");
    for (const auto& seen : out)
      if (seen.bank == bank.bank) return fail(Code::InvalidArgument, at + " repeats PCR bank " + bank.bank);
    const json* values = MCIMD_TRY(r.get("values", true));
    if (!values->is_object()) return fail(Code::InvalidArgument, r.name("values") + " must be an object");
    if (values->empty()) return fail(Code::InvalidArgument, r.name("values") + " lists no PCR");
    for (auto it = values->begin(); it != values->end(); ++it) {
      unsigned index = MCIMD_TRY(pcr_index(it.key(), r.name("values")));
      const std::string what = r.name("values") + "." + it.key();
      auto value = MCIMD_TRY(r.binary(it.value(), what, *size, true));
      if (value.size() != *size)
        return fail(Code::InvalidArgument, what + " is " + std::to_string(value.size()) + " bytes, not a " +
                                               bank.bank + " digest (" + std::to_string(*size) + ")");
      bank.values[index] = std::move(value);
    }
    MCIMD_CHECK(r.finish());
    out.push_back(std::move(bank));
  }
  return out;
}

// --- tpm2-tools serialized PCR file ---------------------------------------------------------------
// Sizes of the tss2 C structures tpm2-tools writes as they lie in memory (x86-64/aarch64 ABI).
constexpr std::size_t kPcrSelectMax = 4;                     // TPM2_PCR_SELECT_MAX ((32 + 7) / 8)
constexpr std::size_t kSelectionEntry = 8;                   // u16 hash, u8 size, u8[4], 1 padding
constexpr std::size_t kBanksMax = 16;                        // TPM2_NUM_PCR_BANKS
constexpr std::size_t kTpmlPcrSelection = 4 + kBanksMax * kSelectionEntry;  // 132
constexpr std::size_t kDigestsPerList = 8;                   // TPML_DIGEST holds 8 (Part 2 §10.9.2)
constexpr std::size_t kTpm2bDigest = 2 + 64;                 // u16 size, sizeof(TPMU_HA)
constexpr std::size_t kTpmlDigest = 4 + kDigestsPerList * kTpm2bDigest;  // 532

void put_le16(Bytes& out, std::size_t at, uint16_t v) {
  out[at] = static_cast<uint8_t>(v);
  out[at + 1] = static_cast<uint8_t>(v >> 8);
}
void put_le32(Bytes& out, std::size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

// The optional logs, as evidence and platform reports carry them. The IMA list travels
// base64url: file names in it need not be UTF-8, which a JSON string must be.
static void write_logs(json& j, const std::optional<Bytes>& event_log, const std::optional<std::string>& ima_log) {
  if (event_log) j["event_log"] = b64(*event_log);
  if (ima_log) j["ima_log"] = base64url_encode(std::span(reinterpret_cast<const uint8_t*>(ima_log->data()), ima_log->size()));
}

static Status read_logs(Reader& r, std::optional<Bytes>& event_log, std::optional<std::string>& ima_log) {
  event_log = MCIMD_TRY(r.optional_binary("event_log", kMaxEventLogSize));
  auto ima = MCIMD_TRY(r.optional_binary("ima_log", kMaxImaLogSize));
  if (ima) ima_log = std::string(ima->begin(), ima->end());
  return {};
}

static json write_pcrs(const std::vector<PcrBank>& banks) {
  json pcrs = json::array();
  for (const auto& bank : banks) {
    json values = json::object();
    for (const auto& [index, value] : bank.values) values[std::to_string(index)] = b64(value);
    pcrs.push_back({{"bank", bank.bank}, {"values", std::move(values)}});
  }
  return pcrs;
}

// --- evidence -----------------------------------------------------------------------------------------
json detail::evidence_value(const Evidence& e) {
  json j;
  j["format"] = kEvidenceFormat;
  j["nonce"] = b64(e.nonce);
  j["quote_message"] = b64(e.quote_message);
  j["quote_signature"] = b64(e.quote_signature);
  j["pcrs"] = write_pcrs(e.pcrs);
  j["ak_public"] = b64(e.ak_public);
  if (e.ek_certificate) j["ek_certificate"] = b64(*e.ek_certificate);
  write_logs(j, e.event_log, e.ima_log);
  return j;
}

Result<Evidence> detail::read_evidence(const json& j, const std::string& where) {
  auto r = MCIMD_TRY(Reader::object(j, where));
  MCIMD_CHECK(r.format(kEvidenceFormat));
  Evidence e;
  e.nonce = MCIMD_TRY(r.binary("nonce", kMaxNonceSize, /*non_empty=*/false));
  e.quote_message = MCIMD_TRY(r.binary("quote_message", kMaxTpmStructureSize));
  MCIMD_CHECK((check_structure<TPMS_ATTEST, Tss2_MU_TPMS_ATTEST_Unmarshal>(e.quote_message, r.name("quote_message"))));
  e.quote_signature = MCIMD_TRY(r.binary("quote_signature", kMaxTpmStructureSize));
  MCIMD_CHECK((check_structure<TPMT_SIGNATURE, Tss2_MU_TPMT_SIGNATURE_Unmarshal>(e.quote_signature,
                                                                                 r.name("quote_signature"))));
  const json* pcrs = MCIMD_TRY(r.get("pcrs", true));
  e.pcrs = MCIMD_TRY(read_pcrs(*pcrs, r.name("pcrs")));
  e.ak_public = MCIMD_TRY(r.binary("ak_public", kMaxTpmStructureSize));
  MCIMD_CHECK((check_structure<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(e.ak_public, r.name("ak_public"))));
  e.ek_certificate = MCIMD_TRY(r.optional_binary("ek_certificate", kMaxEkCertificateSize));
  MCIMD_CHECK(read_logs(r, e.event_log, e.ima_log));
  MCIMD_CHECK(r.finish());
  return e;
}

std::string to_json(const Evidence& e) { return dump(evidence_value(e)); }

Result<Evidence> evidence_from_json(std::string_view text) {
  const std::string doc = "evidence";
  auto j = MCIMD_TRY(parse_document(text, doc));
  return guarded(doc, [&]() -> Result<Evidence> { return read_evidence(j, doc); });
}

// --- tpm2-tools export -----------------------------------------------------------------------------------
Result<Tpm2ToolsTrio> to_tpm2_tools(const Evidence& evidence) {
  auto info = MCIMD_TRY(parse_quote_message(evidence.quote_message));
  // The quote's own selection (as tpm2_quote -l passed it), raw.
  auto attest = MCIMD_TRY((unmarshal<TPMS_ATTEST, Tss2_MU_TPMS_ATTEST_Unmarshal>(evidence.quote_message,
                                                                                 "quote message (TPMS_ATTEST)")));
  const auto& sel = attest.attested.quote.pcrSelect;
  if (sel.count == 0 || sel.count > kBanksMax)
    return fail(Code::InvalidArgument, "The quote selects " + std::to_string(sel.count) + " PCR banks");

  std::vector<const Bytes*> values;
  for (const auto& bank : info.selection) {
    const PcrBank* have = nullptr;
    for (const auto& b : evidence.pcrs)
      if (b.bank == bank.bank) have = &b;
    for (unsigned pcr : bank.pcrs) {
      if (!have || !have->values.count(pcr))
        return fail(Code::InvalidArgument, "The evidence lacks the value of quoted PCR " + bank.bank + ":" +
                                               std::to_string(pcr));
      const Bytes& v = have->values.at(pcr);
      if (v.size() != digest_size(bank.bank))
        return fail(Code::InvalidArgument, "The value of PCR " + bank.bank + ":" + std::to_string(pcr) +
                                               " is not a " + bank.bank + " digest");
      values.push_back(&v);
    }
  }
  const std::size_t lists = (values.size() + kDigestsPerList - 1) / kDigestsPerList;
  Bytes file(kTpmlPcrSelection + 4 + lists * kTpmlDigest, 0);
  put_le32(file, 0, sel.count);
  for (uint32_t i = 0; i < sel.count; ++i) {
    const auto& s = sel.pcrSelections[i];
    const std::size_t at = 4 + i * kSelectionEntry;
    put_le16(file, at, s.hash);
    file[at + 2] = std::min<uint8_t>(s.sizeofSelect, kPcrSelectMax);
    for (std::size_t k = 0; k < kPcrSelectMax && k < s.sizeofSelect; ++k) file[at + 3 + k] = s.pcrSelect[k];
  }
  put_le32(file, kTpmlPcrSelection, static_cast<uint32_t>(lists));
  for (std::size_t n = 0; n < values.size(); ++n) {
    const std::size_t list = kTpmlPcrSelection + 4 + (n / kDigestsPerList) * kTpmlDigest;
    const std::size_t in_list = std::min(kDigestsPerList, values.size() - (n / kDigestsPerList) * kDigestsPerList);
    put_le32(file, list, static_cast<uint32_t>(in_list));
    const std::size_t at = list + 4 + (n % kDigestsPerList) * kTpm2bDigest;
    put_le16(file, at, static_cast<uint16_t>(values[n]->size()));
    std::copy(values[n]->begin(), values[n]->end(), file.begin() + static_cast<std::ptrdiff_t>(at + 2));
  }
  return Tpm2ToolsTrio{evidence.quote_message, evidence.quote_signature, std::move(file)};
}

Status write_tpm2_tools_files(const Evidence& evidence, const std::filesystem::path& dir) {
  auto trio = MCIMD_TRY(to_tpm2_tools(evidence));
  MCIMD_CHECK(write_file_atomic(dir / "quote.msg", trio.message));
  MCIMD_CHECK(write_file_atomic(dir / "quote.sig", trio.signature));
  MCIMD_CHECK(write_file_atomic(dir / "quote.pcrs", trio.pcrs));
  // tpm2_checkquote -u takes a TPM2B_PUBLIC (tpm2-tools "tss" format) as well as PEM.
  MCIMD_CHECK(write_file_atomic(dir / "ak.pub", evidence.ak_public));
  return {};
}

// --- enrolment -------------------------------------------------------------------------------------------
std::string to_json(const EnrolmentRequest& r) {
  json j;
  j["format"] = kEnrolmentRequestFormat;
  j["ek_public"] = b64(r.ek_public);
  if (r.ek_certificate) j["ek_certificate"] = b64(*r.ek_certificate);
  j["ak_public"] = b64(r.ak_public);
  return dump(j);
}

Result<EnrolmentRequest> enrolment_request_from_json(std::string_view text) {
  const std::string doc = "enrolment_request";
  auto j = MCIMD_TRY(parse_document(text, doc));
  return guarded(doc, [&]() -> Result<EnrolmentRequest> {
    auto r = MCIMD_TRY(Reader::object(j, doc));
    MCIMD_CHECK(r.format(kEnrolmentRequestFormat));
    EnrolmentRequest out;
    out.ek_public = MCIMD_TRY(r.binary("ek_public", kMaxTpmStructureSize));
    MCIMD_CHECK((check_structure<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(out.ek_public, r.name("ek_public"))));
    out.ek_certificate = MCIMD_TRY(r.optional_binary("ek_certificate", kMaxEkCertificateSize));
    out.ak_public = MCIMD_TRY(r.binary("ak_public", kMaxTpmStructureSize));
    MCIMD_CHECK((check_structure<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(out.ak_public, r.name("ak_public"))));
    MCIMD_CHECK(r.finish());
    return out;
  });
}

std::string to_json(const CredentialChallenge& c) {
  json j;
  j["format"] = kCredentialChallengeFormat;
  j["credential_blob"] = b64(c.credential_blob);
  j["encrypted_secret"] = b64(c.encrypted_secret);
  return dump(j);
}

Result<CredentialChallenge> credential_challenge_from_json(std::string_view text) {
  const std::string doc = "credential_challenge";
  auto j = MCIMD_TRY(parse_document(text, doc));
  return guarded(doc, [&]() -> Result<CredentialChallenge> {
    auto r = MCIMD_TRY(Reader::object(j, doc));
    MCIMD_CHECK(r.format(kCredentialChallengeFormat));
    CredentialChallenge out;
    out.credential_blob = MCIMD_TRY(r.binary("credential_blob", kMaxTpmStructureSize));
    MCIMD_CHECK((check_structure<TPM2B_ID_OBJECT, Tss2_MU_TPM2B_ID_OBJECT_Unmarshal>(out.credential_blob,
                                                                                     r.name("credential_blob"))));
    out.encrypted_secret = MCIMD_TRY(r.binary("encrypted_secret", kMaxTpmStructureSize));
    MCIMD_CHECK((check_structure<TPM2B_ENCRYPTED_SECRET, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal>(
        out.encrypted_secret, r.name("encrypted_secret"))));
    MCIMD_CHECK(r.finish());
    return out;
  });
}

}  // namespace mcimd::protocol

namespace mcimd::protocol {

// --- semi-autonomous platform report ----------------------------------------------------------------------
std::string to_json(const PlatformReport& report) {
  json j;
  j["format"] = kPlatformReportFormat;
  j["nonce"] = b64(report.nonce);
  j["policy_digest"] = b64(report.policy_digest);
  j["trusted"] = report.trusted;
  json checks = json::array();
  for (const auto& c : report.checks) checks.push_back({{"name", c.name}, {"passed", c.passed}, {"reason", c.reason}});
  j["checks"] = std::move(checks);
  j["pcrs"] = write_pcrs(report.pcrs);
  write_logs(j, report.event_log, report.ima_log);
  return dump(j);
}

Result<PlatformReport> platform_report_from_json(std::string_view text) {
  const std::string doc = "platform_report";
  auto j = MCIMD_TRY(parse_document(text, doc));
  return guarded(doc, [&]() -> Result<PlatformReport> {
    auto r = MCIMD_TRY(Reader::object(j, doc));
    MCIMD_CHECK(r.format(kPlatformReportFormat));
    PlatformReport out;
    out.nonce = MCIMD_TRY(r.binary("nonce", kMaxNonceSize, /*non_empty=*/false));
    out.policy_digest = MCIMD_TRY(r.binary("policy_digest", 32));
    if (out.policy_digest.size() != 32) return fail(Code::InvalidArgument, r.name("policy_digest") + " is not SHA-256");
    const json* trusted = MCIMD_TRY(r.get("trusted", true));
    if (!trusted->is_boolean()) return fail(Code::InvalidArgument, r.name("trusted") + " must be true or false");
    out.trusted = trusted->get<bool>();
    const json* checks = MCIMD_TRY(r.get("checks", true));
    if (!checks->is_array() || checks->size() > kMaxReportChecks)
      return fail(Code::InvalidArgument, r.name("checks") + " must be an array of at most " +
                                             std::to_string(kMaxReportChecks) + " checks");
    for (std::size_t i = 0; i < checks->size(); ++i) {
      auto c = MCIMD_TRY(Reader::object((*checks)[i], r.name("checks") + "[" + std::to_string(i) + "]"));
      ReportCheck check;
      check.name = MCIMD_TRY(c.string("name"));
      check.reason = MCIMD_TRY(c.string("reason"));
      if (check.name.empty() || check.name.size() > kMaxReportText || check.reason.size() > kMaxReportText)
        return fail(Code::InvalidArgument, c.name("name") + " must be 1–" + std::to_string(kMaxReportText) + " characters");
      const json* passed = MCIMD_TRY(c.get("passed", true));
      if (!passed->is_boolean()) return fail(Code::InvalidArgument, c.name("passed") + " must be true or false");
      check.passed = passed->get<bool>();
      MCIMD_CHECK(c.finish());
      out.checks.push_back(std::move(check));
    }
    const json* pcrs = MCIMD_TRY(r.get("pcrs", true));
    out.pcrs = MCIMD_TRY(read_pcrs(*pcrs, r.name("pcrs")));
    MCIMD_CHECK(read_logs(r, out.event_log, out.ima_log));
    MCIMD_CHECK(r.finish());
    bool all = !out.checks.empty();
    for (const auto& c : out.checks) all = all && c.passed;
    if (out.trusted != all)
      return fail(Code::InvalidArgument, r.name("trusted") + " contradicts the checks listed");
    return out;
  });
}

}  // namespace mcimd::protocol
