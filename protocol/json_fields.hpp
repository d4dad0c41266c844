#pragma once
// Internal to protocol/: strict reading of JSON documents, shared by every document parser so
// they refuse the same things with the same words. Each access names the field as
// "<document>.<field>[.<member>…]"; finish() refuses members nobody asked for.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/evidence.hpp"
#include "protocol/provisioning.hpp"
#include "protocol/tpm_mu.hpp"

namespace mcimd::protocol::detail {

using json = nlohmann::json;

inline std::string dump(const json& j) {
  // Every string we write is ASCII; replace rather than throw should one not be UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

inline std::string b64(std::span<const uint8_t> b) { return base64url_encode(b); }

class Reader {
 public:
  Reader(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  static Result<Reader> object(const json& j, std::string where) {
    if (!j.is_object()) return fail(Code::InvalidArgument, where + " must be a JSON object");
    return Reader(j, std::move(where));
  }

  std::string name(std::string_view field) const { return where_ + "." + std::string(field); }

  Result<const json*> get(std::string_view field, bool required) {
    known_.insert(std::string(field));
    auto it = obj_.find(std::string(field));
    if (it == obj_.end()) {
      if (required) return fail(Code::InvalidArgument, "Missing field " + name(field));
      return nullptr;
    }
    return &*it;
  }

  Result<std::string> string(std::string_view field) {
    const json* j = MCIMD_TRY(get(field, true));
    if (!j->is_string()) return fail(Code::InvalidArgument, name(field) + " must be a string");
    return j->get<std::string>();
  }

  // A JSON number without sign, fraction or exponent, at most `max`.
  Result<uint64_t> unsigned_integer(std::string_view field, uint64_t max = UINT64_MAX) {
    const json* j = MCIMD_TRY(get(field, true));
    if (!j->is_number_unsigned())
      return fail(Code::InvalidArgument, name(field) + " must be an unsigned integer");
    const auto v = j->get<uint64_t>();
    if (v > max) return fail(Code::InvalidArgument, name(field) + " is above " + std::to_string(max));
    return v;
  }

  Result<bool> boolean(std::string_view field) {
    const json* j = MCIMD_TRY(get(field, true));
    if (!j->is_boolean()) return fail(Code::InvalidArgument, name(field) + " must be true or false");
    return j->get<bool>();
  }

  // A member that is itself an object, read with its own Reader (finish() it too).
  Result<Reader> member(std::string_view field) {
    const json* j = MCIMD_TRY(get(field, true));
    return object(*j, name(field));
  }

  Result<Bytes> binary(const json& j, const std::string& what, std::size_t max, bool non_empty) {
    if (!j.is_string()) return fail(Code::InvalidArgument, what + " must be a base64url string");
    const auto& text = j.get_ref<const std::string&>();
    // base64 grows 4/3: refuse before decoding what cannot fit.
    if (text.size() > (max + 2) / 3 * 4 + 2)
      return fail(Code::InvalidArgument, what + " is larger than " + std::to_string(max) + " bytes");
    auto bytes = MCIMD_TRY(base64url_decode(text, what));
    if (bytes.size() > max)
      return fail(Code::InvalidArgument, what + " is larger than " + std::to_string(max) + " bytes");
    if (non_empty && bytes.empty()) return fail(Code::InvalidArgument, what + " is empty");
    return bytes;
  }

  Result<Bytes> binary(std::string_view field, std::size_t max, bool non_empty = true) {
    const json* j = MCIMD_TRY(get(field, true));
    return binary(*j, name(field), max, non_empty);
  }

  Result<std::optional<Bytes>> optional_binary(std::string_view field, std::size_t max) {
    const json* j = MCIMD_TRY(get(field, false));
    if (!j) return std::optional<Bytes>{};
    return std::optional<Bytes>(MCIMD_TRY(binary(*j, name(field), max, true)));
  }

  // Exactly `size` bytes.
  Result<Bytes> fixed_binary(std::string_view field, std::size_t size) {
    auto b = MCIMD_TRY(binary(field, size, /*non_empty=*/false));
    if (b.size() != size)
      return fail(Code::InvalidArgument, name(field) + " is " + std::to_string(b.size()) + " bytes, not " +
                                             std::to_string(size));
    return b;
  }

  Status format(std::string_view expected) {
    auto f = MCIMD_TRY(string("format"));
    if (f != expected)
      return fail(Code::InvalidArgument, name("format") + " is '" + f + "', expected '" + std::string(expected) + "'");
    return {};
  }

  Status finish() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (!known_.count(it.key())) return fail(Code::InvalidArgument, "Unknown field " + name(it.key()));
    return {};
  }

 private:
  const json& obj_;
  std::string where_;
  std::set<std::string> known_;
};

// Parses a whole document of at most `max_size` bytes. With unique_keys, an object that names a
// member twice is refused: parsers differ on which of the two wins, and a signed document must
// mean one thing to everyone who reads it.
inline Result<json> parse_document(std::string_view text, const std::string& doc,
                                   std::size_t max_size = kMaxDocumentSize, bool unique_keys = false) {
  if (text.size() > max_size)
    return fail(Code::InvalidArgument, "The " + doc + " document is larger than " + std::to_string(max_size) +
                                           " bytes");
  try {
    if (!unique_keys) return json::parse(text);
    std::vector<std::set<std::string>> open;  // member names of each object being read, innermost last
    std::string repeated;
    json::parser_callback_t track = [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) open.emplace_back();
      if (event == json::parse_event_t::object_end && !open.empty()) open.pop_back();
      if (event == json::parse_event_t::key && !open.empty() && !open.back().insert(parsed.get<std::string>()).second &&
          repeated.empty())
        repeated = parsed.get<std::string>();
      return true;
    };
    json j = json::parse(text, track);
    if (!repeated.empty())
      return fail(Code::InvalidArgument, "The " + doc + " document names member '" + repeated + "' twice");
    return j;
  } catch (const json::exception& e) {
    return fail(Code::InvalidArgument, "The " + doc + " document is not valid JSON: " + e.what());
  }
}

// Runs a parser body, turning any nlohmann exception that escapes it into InvalidArgument.
template <class F>
auto guarded(const std::string& doc, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const json::exception& e) {
    return fail(Code::InvalidArgument, "Malformed " + doc + " document: " + e.what());
  }
}

template <class T, auto Unmarshal>
Status check_structure(const Bytes& data, const std::string& what) {
  MCIMD_CHECK((unmarshal<T, Unmarshal>(data, what)));
  return {};
}

// The evidence document as a JSON value, for documents that carry it as a member.
json evidence_value(const Evidence& e);
[[nodiscard]] Result<Evidence> read_evidence(const json& j, const std::string& where);

// --- characters ---------------------------------------------------------------------------------------
inline bool in(char c, char lo, char hi) { return c >= lo && c <= hi; }
inline bool is_digit(char c) { return in(c, '0', '9'); }
inline bool is_lower_hex(char c) { return is_digit(c) || in(c, 'a', 'f'); }
inline bool is_hex(char c) { return is_lower_hex(c) || in(c, 'A', 'F'); }

template <class Pred>
bool all_of(std::string_view s, Pred pred) {
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}

// --- field checks (json_fields.cpp): each names the field and the rule, never echoes the hostile value --
// An id of 1-kMaxIdLength characters of [A-Za-z0-9_-], and '.' with `dot`.
[[nodiscard]] Status check_id(std::string_view v, const std::string& what, bool dot);
[[nodiscard]] Status check_digits(std::string_view v, const std::string& what, std::size_t min, std::size_t max);
// A TPM name of an object: nameAlg (big-endian) ‖ its digest (TPM 2.0 Part 1 §16).
[[nodiscard]] Status check_tpm_name(std::span<const uint8_t> name, const std::string& what);
// The AK name in lower-case hex, as the operator knows the device after enrolment.
[[nodiscard]] Status check_device(std::string_view v, const std::string& what);
// 1-kMaxIdLength printable ASCII characters: no control character reaches a log line.
[[nodiscard]] Status check_operator_id(std::string_view v, const std::string& what);

// --- readers: a field read and checked as above ------------------------------------------------------------
[[nodiscard]] Result<std::string> read_id(Reader& r, std::string_view field, bool dot);
[[nodiscard]] Result<std::string> read_device(Reader& r, std::string_view field);
[[nodiscard]] Result<std::string> read_operator_id(Reader& r, std::string_view field);
// ITU-T E.118: up to 19 digits and a check digit; 18 is the shortest ICCID in use.
[[nodiscard]] Result<std::string> read_iccid(Reader& r, std::string_view field);
[[nodiscard]] Result<Timestamp> read_time(const json& j, const std::string& what);
[[nodiscard]] Result<Timestamp> read_time(Reader& r, std::string_view field);
// A TPMS_ATTEST of one type (TPM 2.0 Part 2 §10.12.12), made by a TPM.
[[nodiscard]] Result<Bytes> read_attest(Reader& r, std::string_view field, TPM2_ST type, std::string_view type_name);
[[nodiscard]] Result<Bytes> read_signature(Reader& r, std::string_view field);
[[nodiscard]] Result<Bytes> read_public(Reader& r, std::string_view field);
// One of `names` (a field whose values are a closed set of strings), as its index.
[[nodiscard]] Result<std::size_t> read_choice(Reader& r, std::string_view field, std::span<const std::string_view> names);

// A marshaled TPM structure that must unmarshal completely; a TPM2B must not be empty either.
template <class T, auto Unmarshal>
Result<Bytes> read_tpm(Reader& r, std::string_view field) {
  auto data = MCIMD_TRY(r.binary(field, kMaxTpmStructureSize));
  auto value = MCIMD_TRY((unmarshal<T, Unmarshal>(data, r.name(field))));
  if constexpr (requires { value.size; })
    if (value.size == 0) return fail(Code::InvalidArgument, r.name(field) + " holds an empty TPM2B");
  return data;
}

// Parses a document and reads its top-level object with `read`, which finishes the reader.
template <class T, class F>
Result<T> read_document(std::string_view text, const std::string& doc, std::size_t max_size, F&& read) {
  auto j = MCIMD_TRY(parse_document(text, doc, max_size, /*unique_keys=*/true));
  return guarded(doc, [&]() -> Result<T> {
    auto r = MCIMD_TRY(Reader::object(j, doc));
    T out = MCIMD_TRY(read(r));
    MCIMD_CHECK(r.finish());
    return out;
  });
}

// --- quoted documents: a body's exact bytes and the AK's quote over them (install and deletion receipts) --
// {"format":FORMAT,"body":B64,"quote_message":B64,"quote_signature":B64}
template <class Quoted>
std::string quoted_document_json(const Quoted& m, std::string_view format) {
  return dump({{"format", format},
               {"body", b64({reinterpret_cast<const uint8_t*>(m.body.data()), m.body.size()})},
               {"quote_message", b64(m.quote_message)},
               {"quote_signature", b64(m.quote_signature)}});
}

// Reads one; the body must be at most max_body bytes and parse with parse_body (the operator
// reads what the TPM quoted), the quote must be a TPM-made TPMS_ATTEST of type quote.
template <class Quoted, class ParseBody>
Result<Quoted> quoted_document_from_json(std::string_view text, const std::string& doc, std::string_view format,
                                         std::size_t max_body, ParseBody&& parse_body) {
  return read_document<Quoted>(text, doc, kMaxProvisioningMessageSize, [&](Reader& r) -> Result<Quoted> {
    MCIMD_CHECK(r.format(format));
    Quoted m;
    auto body = MCIMD_TRY(r.binary("body", max_body));
    m.body.assign(body.begin(), body.end());
    if (auto parsed = parse_body(m.body); !parsed)
      return fail(Code::InvalidArgument, r.name("body") + ": " + parsed.error().message);
    m.quote_message = MCIMD_TRY(read_attest(r, "quote_message", TPM2_ST_ATTEST_QUOTE, "TPM_ST_ATTEST_QUOTE"));
    m.quote_signature = MCIMD_TRY(read_signature(r, "quote_signature"));
    return m;
  });
}

}  // namespace mcimd::protocol::detail
