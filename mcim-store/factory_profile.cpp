// Factory profile YAML → FactoryProfile. Every error names the key and its line; values of
// k, op and opc never reach a message.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <istream>
#include <limits>
#include <set>
#include <streambuf>

#include "mcim-store/codec.hpp"
#include "mcim-store/store.hpp"

namespace mcimd::store {

namespace {

constexpr std::size_t kMaxFactoryYaml = 64 * 1024;
constexpr std::size_t kKeyLength = 16;  // TS 35.206 §2: K, OP and OPc are 128 bits
constexpr uint64_t kSqnLimit = uint64_t{1} << 48;  // TS 33.102 §6.3.2: SQN is 48 bits

// Lets yaml-cpp read the caller's buffer in place instead of from another copy of the secrets.
class ViewBuffer : public std::streambuf {
 public:
  explicit ViewBuffer(std::string_view text) {
    char* p = const_cast<char*>(text.data());
    setg(p, p, p + text.size());
  }
};

unsigned line_of(const YAML::Node& node) { return static_cast<unsigned>(node.Mark().line + 1); }

tl::unexpected<Error> bad(std::string_view key, const YAML::Node& at, std::string_view why) {
  return fail(Code::InvalidArgument, "Factory profile: '" + std::string(key) + "' at line " +
                                         std::to_string(line_of(at)) + ": " + std::string(why));
}

// An unknown key is echoed only when it looks like a key name: someone who pasted a secret
// where a key belongs must not find it in a log.
std::string printable_key(const std::string& key) {
  if (key.empty() || key.size() > 24) return "(unnamed)";
  bool all_hex = true;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return "(unnamed)";
    all_hex = all_hex && std::isxdigit(static_cast<unsigned char>(c));
  }
  if (all_hex && key.size() >= 8) return "(unnamed)";  // could be a piece of K or OP
  return key;
}

Result<const std::string*> scalar(std::string_view key, const YAML::Node& value) {
  if (!value.IsScalar()) return bad(key, value, "expected a single value");
  return &value.Scalar();
}

Result<uint64_t> decimal(std::string_view key, const YAML::Node& value, uint64_t max) {
  const std::string& s = *MCIMD_TRY(scalar(key, value));
  if (!detail::all_digits(s)) return bad(key, value, "expected a decimal integer");
  uint64_t v = 0;
  for (char c : s) {
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return bad(key, value, "is too large");
    v = v * 10 + d;
  }
  if (v > max) return bad(key, value, "must be at most " + std::to_string(max));
  return v;
}

Result<bool> boolean(std::string_view key, const YAML::Node& value) {
  const std::string& s = *MCIMD_TRY(scalar(key, value));
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes") return true;
  if (s == "false" || s == "False" || s == "FALSE" || s == "no") return false;
  return bad(key, value, "expected true or false");
}

Result<SecureBytes> secret(std::string_view key, const YAML::Node& value) {
  const std::string& s = *MCIMD_TRY(scalar(key, value));
  // secret_from_hex names only the key and a position, never the digits.
  auto bytes = secret_from_hex(s, key, kKeyLength);
  if (!bytes) return bad(key, value, "expected 32 hex digits (" + bytes.error().message + ")");
  return std::move(*bytes);
}

// SQN as 12 hex digits (its 48 bits, TS 33.102 §6.3.2), "0x"-prefixed hex, or a decimal integer.
// Exactly 12 characters that are all hex digits read as hex, whatever they look like.
Result<uint64_t> initial_sqn(std::string_view key, const YAML::Node& value) {
  const std::string& s = *MCIMD_TRY(scalar(key, value));
  auto hex_digit = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  std::string_view hex = s;
  const bool prefixed = hex.starts_with("0x") || hex.starts_with("0X");
  if (prefixed) hex.remove_prefix(2);
  if (prefixed || (hex.size() == 12 && std::all_of(hex.begin(), hex.end(), hex_digit))) {
    if (hex.empty() || hex.size() > 12 || !std::all_of(hex.begin(), hex.end(), hex_digit))
      return bad(key, value, "expected at most 12 hex digits after 0x");
    uint64_t v = 0;
    for (char c : hex) v = v << 4 | static_cast<uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    return v;
  }
  return decimal(key, value, kSqnLimit - 1);
}

// Walks one YAML mapping: rejects non-string, unknown and repeated keys; calls handle per key.
template <class Handle>
Status each_key(const YAML::Node& map, std::string_view where, const std::set<std::string_view>& known,
                Handle&& handle) {
  std::set<std::string> seen;
  for (const auto& pair : map) {  // yaml-cpp yields pairs by value: keep them alive
    const YAML::Node key = pair.first;
    const YAML::Node value = pair.second;
    if (!key.IsScalar())
      return fail(Code::InvalidArgument, "Factory profile: a key in " + std::string(where) + " at line " +
                                             std::to_string(line_of(key)) + " is not a name");
    const std::string& name = key.Scalar();
    if (!known.contains(name))
      return fail(Code::InvalidArgument, "Factory profile: unknown key '" + printable_key(name) + "' in " +
                                             std::string(where) + " at line " + std::to_string(line_of(key)));
    if (!seen.insert(name).second) return bad(name, key, "appears twice");
    MCIMD_CHECK(handle(name, key, value));
  }
  return {};
}

Result<FactoryProfile> parse(std::string_view yaml) {
  if (yaml.size() > kMaxFactoryYaml)
    return fail(Code::InvalidArgument, "Factory profile: larger than " + std::to_string(kMaxFactoryYaml) + " bytes");
  ViewBuffer buffer(yaml);
  std::istream in(&buffer);
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    // e.msg is yaml-cpp's fixed description; e.what() could quote the document.
    return fail(Code::InvalidArgument,
                "Factory profile: invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return fail(Code::InvalidArgument, "Factory profile: expected a mapping of keys to values");

  FactoryProfile out;
  std::optional<unsigned> op_line;
  bool has_k = false, has_operator = false;
  static const std::set<std::string_view> top = {"iccid", "imsi", "operator", "class", "k",
                                                 "op",    "opc",  "amf",      "sqn"};
  static const std::set<std::string_view> sqn_keys = {"initial", "ind-bits", "delta", "age-limit",
                                                      "require-amf-separation"};
  MCIMD_CHECK(each_key(root, "the document", top, [&](const std::string& name, const YAML::Node& key,
                                                       const YAML::Node& value) -> Status {
    if (name == "iccid") {
      const std::string& s = *MCIMD_TRY(scalar(name, value));
      if (!detail::valid_iccid(s)) return bad(name, value, "expected 18-20 digits (ITU-T E.118)");
      out.iccid = s;
    } else if (name == "imsi") {
      const std::string& s = *MCIMD_TRY(scalar(name, value));
      if (!detail::valid_imsi(s)) return bad(name, value, "expected 6-15 digits (TS 23.003)");
      out.imsi = s;
    } else if (name == "operator") {
      const std::string& s = *MCIMD_TRY(scalar(name, value));
      if (!detail::valid_operator_id(s)) return bad(name, value, "expected 1-64 printable ASCII characters");
      out.operator_id = s;
      has_operator = true;
    } else if (name == "class") {
      auto cls = profile_class_from_string(*MCIMD_TRY(scalar(name, value)));
      if (!cls) return bad(name, value, "expected operational or bootstrap");
      out.profile_class = *cls;
    } else if (name == "k") {
      out.k = MCIMD_TRY(secret(name, value));
      has_k = true;
    } else if (name == "op" || name == "opc") {
      if (op_line) return bad(name, key, "give either op or opc, not both");
      op_line = line_of(key);
      (name == "op" ? out.op : out.opc) = MCIMD_TRY(secret(name, value));
    } else if (name == "amf") {
      auto amf = from_hex(*MCIMD_TRY(scalar(name, value)), name, 2);
      if (!amf) return bad(name, value, "expected 4 hex digits");
      out.amf = {(*amf)[0], (*amf)[1]};
    } else if (name == "sqn") {
      if (!value.IsMap()) return bad(name, value, "expected a mapping");
      return each_key(value, "sqn", sqn_keys, [&](const std::string& sub, const YAML::Node&,
                                                   const YAML::Node& v) -> Status {
        const std::string full = "sqn." + sub;
        if (sub == "initial") {
          out.initial_sqn = MCIMD_TRY(initial_sqn(full, v));
        } else if (sub == "ind-bits") {
          auto n = MCIMD_TRY(decimal(full, v, 10));  // aka/sqn.hpp: 1..10
          if (n == 0) return bad(full, v, "must be 1-10 (TS 33.102 C.3.2 recommends 5)");
          out.sqn.ind_bits = static_cast<unsigned>(n);
        } else if (sub == "delta") {
          // TS 33.102 C.2.1: Δ; aka/sqn.hpp bounds it below 2^43.
          auto n = MCIMD_TRY(decimal(full, v, (uint64_t{1} << 43) - 1));
          if (n == 0) return bad(full, v, "must be at least 1");
          out.sqn.delta = n;
        } else if (sub == "age-limit") {
          out.sqn.age_limit = MCIMD_TRY(decimal(full, v, kSqnLimit - 1));  // TS 33.102 C.2.2: L
        } else {
          out.sqn.require_amf_separation = MCIMD_TRY(boolean(full, v));
        }
        return {};
      });
    }
    return {};
  }));

  if (out.iccid.empty()) return fail(Code::InvalidArgument, "Factory profile: 'iccid' is missing");
  if (out.imsi.empty()) return fail(Code::InvalidArgument, "Factory profile: 'imsi' is missing");
  if (!has_k) return fail(Code::InvalidArgument, "Factory profile: 'k' is missing");
  if (!op_line) return fail(Code::InvalidArgument, "Factory profile: one of 'op' or 'opc' is required");
  // TS 23.003 §2.2: the IMSI starts with MCC (3 digits) + MNC (2 or 3); 5 is the shorter form.
  if (!has_operator) out.operator_id = out.imsi.substr(0, 5);
  return out;
}

}  // namespace

Result<FactoryProfile> parse_factory_profile(std::string_view yaml) {
  try {
    return parse(yaml);
  } catch (const std::exception&) {
    // yaml-cpp node access can throw; its what() may quote the document, so it is not passed on.
    return fail(Code::InvalidArgument, "Factory profile: could not be parsed");
  }
}

}  // namespace mcimd::store
