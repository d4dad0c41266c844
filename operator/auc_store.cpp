#include "operator/auc_store.hpp"

#include <nlohmann/json.hpp>

#include "common/file.hpp"

namespace mcimd::op {
namespace {

using nlohmann::json;

bool digits(std::string_view s, std::size_t min, std::size_t max) {
  return s.size() >= min && s.size() <= max && s.find_first_not_of("0123456789") == std::string_view::npos;
}

std::filesystem::path record_path(const std::filesystem::path& dir, std::string_view iccid) {
  return dir / (std::string(iccid) + ".json");
}

// A std::string that held key material, overwritten before it is freed.
struct WipedString {
  std::string text;
  ~WipedString() { wipe(text.data(), text.size()); }
};

Status check_record(const AucRecord& r) {
  if (!digits(r.iccid, 18, 20)) return fail(Code::InvalidArgument, "AuC record: the ICCID must be 18–20 digits");
  if (!digits(r.imsi, 6, 15)) return fail(Code::InvalidArgument, "AuC record: the IMSI must be 6–15 digits");
  if (r.k.size() != 16 || r.opc.size() != 16)
    return fail(Code::InvalidArgument, "AuC record: K and OPc must be 16 bytes each");
  return {};
}

// write_file_atomic: a new file (0600) renamed over the old one.
Status store_record(const std::filesystem::path& path, const AucRecord& r) {
  WipedString k{to_hex(r.k)}, opc{to_hex(r.opc)};
  WipedString text{json{{"format", "mcim-operator-auc-1"}, {"iccid", r.iccid}, {"imsi", r.imsi}, {"k", k.text},
                        {"opc", opc.text}, {"amf", "8000"}}
                       .dump(2) +
                   "\n"};
  return write_file_atomic(path, text.text);
}

}  // namespace

Status write_auc_record(const std::filesystem::path& dir, const AucRecord& r) {
  MCIMD_CHECK(check_record(r));
  MCIMD_CHECK(make_private_dir(dir));
  const auto path = record_path(dir, r.iccid);
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    return fail(Code::AlreadyExists, "the AuC already has a record for ICCID " + r.iccid);
  return store_record(path, r);
}

Status replace_auc_keys(const std::filesystem::path& dir, const AucRecord& r) {
  MCIMD_CHECK(check_record(r));
  const AucRecord current = MCIMD_TRY(read_auc_record(dir, r.iccid));
  if (current.imsi != r.imsi)
    return fail(Code::InvalidArgument,
                "AuC record: ICCID " + r.iccid + " is the subscription of IMSI " + current.imsi + ", not " + r.imsi);
  return store_record(record_path(dir, r.iccid), r);
}

Result<AucRecord> read_auc_record(const std::filesystem::path& dir, std::string_view iccid) {
  if (!digits(iccid, 18, 20)) return fail(Code::InvalidArgument, "AuC record: the ICCID must be 18–20 digits");
  auto bytes = MCIMD_TRY(read_file(record_path(dir, iccid), 4096));
  WipedString text{std::string(bytes.begin(), bytes.end())};
  wipe(bytes.data(), bytes.size());
  const std::string what = "the AuC record of " + std::string(iccid);
  json j = json::parse(text.text, nullptr, /*allow_exceptions=*/false);
  auto string_field = [&](const char* name) -> const std::string* {
    if (!j.is_object() || !j.contains(name) || !j[name].is_string()) return nullptr;
    return j[name].get_ptr<const std::string*>();
  };
  const auto *format = string_field("format"), *icc = string_field("iccid"), *imsi = string_field("imsi"),
             *k = string_field("k"), *opc = string_field("opc");
  if (!format || *format != "mcim-operator-auc-1" || !icc || !imsi || !k || !opc)
    return fail(Code::StoreCorrupt, what + " does not parse");
  if (*icc != iccid) return fail(Code::StoreCorrupt, what + " names ICCID " + *icc);
  AucRecord r;
  r.iccid = *icc;
  r.imsi = *imsi;
  auto kb = secret_from_hex(*k, "K", 16);
  auto ob = secret_from_hex(*opc, "OPc", 16);
  if (!kb || !ob) return fail(Code::StoreCorrupt, what + ": K or OPc is not 16 bytes of hex");
  r.k = std::move(*kb);
  r.opc = std::move(*ob);
  if (auto* s = j["k"].get_ptr<std::string*>()) wipe(s->data(), s->size());
  if (auto* s = j["opc"].get_ptr<std::string*>()) wipe(s->data(), s->size());
  return r;
}

}  // namespace mcimd::op
