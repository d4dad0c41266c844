// The field checks and readers every protocol document shares (protocol/json_fields.hpp).
#include "protocol/json_fields.hpp"

#include "protocol/quote.hpp"

namespace mcimd::protocol::detail {

namespace {

bool is_id_char(char c, bool dot) {
  return in(c, 'A', 'Z') || in(c, 'a', 'z') || is_digit(c) || c == '_' || c == '-' || (dot && c == '.');
}

}  // namespace

Status check_id(std::string_view v, const std::string& what, bool dot) {
  if (v.empty() || v.size() > kMaxIdLength || !all_of(v, [dot](char c) { return is_id_char(c, dot); }))
    return fail(Code::InvalidArgument, what + " must be 1-" + std::to_string(kMaxIdLength) + " characters of " +
                                           (dot ? "[A-Za-z0-9._-]" : "[A-Za-z0-9_-]"));
  return {};
}

Status check_digits(std::string_view v, const std::string& what, std::size_t min, std::size_t max) {
  if (v.size() < min || v.size() > max || !all_of(v, is_digit))
    return fail(Code::InvalidArgument, what + " must be " + std::to_string(min) + "-" + std::to_string(max) + " digits");
  return {};
}

Status check_tpm_name(std::span<const uint8_t> name, const std::string& what) {
  if (name.size() >= 2) {
    auto alg = hash_name(static_cast<uint16_t>(name[0] << 8 | name[1]));
    if (alg && name.size() == 2 + *digest_size(*alg)) return {};
  }
  return fail(Code::InvalidArgument, what + " is not a TPM object name (a SHA-1/256/384/512 nameAlg and its digest)");
}

Status check_device(std::string_view v, const std::string& what) {
  if (v.size() % 2 != 0 || !all_of(v, is_lower_hex))
    return fail(Code::InvalidArgument, what + " must be the AK name in lower-case hex");
  auto name = MCIMD_TRY(from_hex(v, what));
  return check_tpm_name(name, what);
}

Status check_operator_id(std::string_view v, const std::string& what) {
  if (v.empty() || v.size() > kMaxIdLength || !all_of(v, [](char c) { return in(c, 0x20, 0x7e); }))
    return fail(Code::InvalidArgument, what + " must be 1-" + std::to_string(kMaxIdLength) + " printable ASCII characters");
  return {};
}

Result<std::string> read_id(Reader& r, std::string_view field, bool dot) {
  auto v = MCIMD_TRY(r.string(field));
  MCIMD_CHECK(check_id(v, r.name(field), dot));
  return v;
}

Result<std::string> read_device(Reader& r, std::string_view field) {
  auto v = MCIMD_TRY(r.string(field));
  MCIMD_CHECK(check_device(v, r.name(field)));
  return v;
}

Result<std::string> read_operator_id(Reader& r, std::string_view field) {
  auto v = MCIMD_TRY(r.string(field));
  MCIMD_CHECK(check_operator_id(v, r.name(field)));
  return v;
}

Result<std::string> read_iccid(Reader& r, std::string_view field) {
  auto v = MCIMD_TRY(r.string(field));
  MCIMD_CHECK(check_digits(v, r.name(field), 18, 20));
  return v;
}

Result<Timestamp> read_time(const json& j, const std::string& what) {
  if (!j.is_string()) return fail(Code::InvalidArgument, what + " must be a string");
  auto t = parse_timestamp(j.get_ref<const std::string&>());
  if (!t) return fail(Code::InvalidArgument, what + ": " + t.error().message);
  return *t;
}

Result<Timestamp> read_time(Reader& r, std::string_view field) {
  const json* j = MCIMD_TRY(r.get(field, true));
  return read_time(*j, r.name(field));
}

Result<Bytes> read_attest(Reader& r, std::string_view field, TPM2_ST type, std::string_view type_name) {
  auto data = MCIMD_TRY(r.binary(field, kMaxTpmStructureSize));
  auto attest = MCIMD_TRY((unmarshal<TPMS_ATTEST, Tss2_MU_TPMS_ATTEST_Unmarshal>(data, r.name(field))));
  if (attest.magic != TPM2_GENERATED_VALUE || attest.type != type)
    return fail(Code::InvalidArgument, r.name(field) + " is not a TPM-generated TPMS_ATTEST of type " + std::string(type_name));
  return data;
}

Result<Bytes> read_signature(Reader& r, std::string_view field) {
  return read_tpm<TPMT_SIGNATURE, Tss2_MU_TPMT_SIGNATURE_Unmarshal>(r, field);
}

Result<Bytes> read_public(Reader& r, std::string_view field) {
  return read_tpm<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(r, field);
}

Result<std::size_t> read_choice(Reader& r, std::string_view field, std::span<const std::string_view> names) {
  auto v = MCIMD_TRY(r.string(field));
  for (std::size_t i = 0; i < names.size(); ++i)
    if (v == names[i]) return i;
  std::string list;
  for (std::size_t i = 0; i < names.size(); ++i)
    list += (i == 0 ? "\"" : i + 1 == names.size() ? " or \"" : ", \"") + std::string(names[i]) + "\"";
  return fail(Code::InvalidArgument, r.name(field) + " must be " + list);
}

}  // namespace mcimd::protocol::detail
