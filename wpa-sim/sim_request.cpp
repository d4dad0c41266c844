#include "wpa-sim/sim_request.hpp"

#include <array>
#include <string>

namespace mcimd::wpasim {
namespace {

constexpr std::string_view kRequestPrefix = "CTRL-REQ-SIM-";
constexpr std::string_view kIdentityPrefix = "CTRL-REQ-IDENTITY-";
constexpr std::string_view kSsidSuffix = " needed for SSID ";
constexpr uint32_t kMaxNetworkId = 0x7fffffff;  // wpa_supplicant's ids are non-negative ints

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly `size` bytes as 2·size hex digits at the front of `text`, which is advanced past them.
// No "0x", no sign, no separators: common's from_hex is more lenient than this protocol.
Result<Bytes> take_hex(std::string_view& text, std::size_t size, std::string_view what) {
  if (text.size() < 2 * size)
    return fail(Code::InvalidArgument, std::string(what) + " is shorter than " + std::to_string(2 * size) +
                                           " hex digits");
  Bytes out(size);
  for (std::size_t i = 0; i < size; ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return fail(Code::InvalidArgument, std::string(what) + " has a character that is not a hex digit");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  text.remove_prefix(2 * size);
  return out;
}

Status expect(std::string_view& text, char c, std::string_view after) {
  if (text.empty() || text.front() != c)
    return fail(Code::InvalidArgument, "Expected '" + std::string(1, c) + "' after " + std::string(after));
  text.remove_prefix(1);
  return {};
}

// The end of the request: nothing, or wpa_supplicant's human-readable suffix.
Status expect_end(std::string_view text, std::string_view after) {
  if (text.empty() || text.starts_with(kSsidSuffix)) return {};
  return fail(Code::InvalidArgument, "Unexpected data after " + std::string(after));
}

Result<uint32_t> take_network_id(std::string_view& text, std::string_view request) {
  std::size_t n = 0;
  while (n < text.size() && is_digit(text[n])) ++n;
  const std::string what(request);
  if (n == 0) return fail(Code::InvalidArgument, what + " has no network id");
  if (n > 10) return fail(Code::InvalidArgument, what + " network id is too long");
  uint64_t value = 0;
  for (std::size_t i = 0; i < n; ++i) value = value * 10 + static_cast<uint64_t>(text[i] - '0');
  if (value > kMaxNetworkId) return fail(Code::InvalidArgument, what + " network id is out of range");
  text.remove_prefix(n);
  return static_cast<uint32_t>(value);
}

Result<UmtsChallenge> parse_umts(std::string_view text) {
  UmtsChallenge c;
  c.rand = MCIMD_TRY(take_hex(text, kRandSize, "UMTS-AUTH RAND"));
  MCIMD_CHECK(expect(text, ':', "UMTS-AUTH RAND"));
  c.autn = MCIMD_TRY(take_hex(text, kAutnSize, "UMTS-AUTH AUTN"));
  MCIMD_CHECK(expect_end(text, "UMTS-AUTH AUTN"));
  return c;
}

Result<GsmChallenge> parse_gsm(std::string_view text) {
  GsmChallenge c;
  for (;;) {
    if (c.rands.size() == kGsmMaxRands) return fail(Code::InvalidArgument, "GSM-AUTH has more than three RANDs");
    c.rands.push_back(MCIMD_TRY(take_hex(text, kRandSize, "GSM-AUTH RAND")));
    if (text.empty() || text.front() != ':') break;
    text.remove_prefix(1);
  }
  MCIMD_CHECK(expect_end(text, "GSM-AUTH RAND"));
  if (c.rands.size() < kGsmMinRands) return fail(Code::InvalidArgument, "GSM-AUTH has fewer than two RANDs");
  return c;
}

std::string response_prefix(uint32_t network_id) { return "CTRL-RSP-SIM-" + std::to_string(network_id) + ":"; }

// Appends lower-case hex to a string of any allocator.
template <class String>
void append_hex(String& out, std::span<const uint8_t> data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t b : data) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
}

Status check_size(std::span<const uint8_t> data, std::size_t size, std::string_view what) {
  if (data.size() == size) return {};
  return fail(Code::InvalidArgument, std::string(what) + " is " + std::to_string(data.size()) + " bytes, expected " +
                                         std::to_string(size));
}

}  // namespace

Result<std::optional<SimRequest>> parse_event(std::string_view message) {
  if (message.size() > kMaxEventSize) return fail(Code::InvalidArgument, "Control interface message is too long");
  if (message.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos)
    return fail(Code::InvalidArgument, "Control interface message contains a NUL or line break");
  // wpa_supplicant prefixes events with their level, "<3>" (wpa_ctrl.h); replies have none.
  if (!message.empty() && message.front() == '<') {
    std::size_t n = 1;
    while (n < message.size() && n <= 3 && is_digit(message[n])) ++n;
    if (n == 1 || n > 3 || n >= message.size() || message[n] != '>')
      return fail(Code::InvalidArgument, "Control interface event has a malformed level prefix");
    message.remove_prefix(n + 1);
  }
  SimRequest request;
  if (message.starts_with(kIdentityPrefix)) {
    message.remove_prefix(kIdentityPrefix.size());
    request.network_id = MCIMD_TRY(take_network_id(message, "CTRL-REQ-IDENTITY"));
    MCIMD_CHECK(expect(message, ':', "the CTRL-REQ-IDENTITY network id"));
    request.challenge = IdentityQuestion{};
    return std::optional<SimRequest>(std::move(request));
  }
  if (!message.starts_with(kRequestPrefix)) return std::optional<SimRequest>{};
  message.remove_prefix(kRequestPrefix.size());

  request.network_id = MCIMD_TRY(take_network_id(message, "CTRL-REQ-SIM"));
  MCIMD_CHECK(expect(message, ':', "the CTRL-REQ-SIM network id"));
  if (message.starts_with("UMTS-AUTH:")) {
    message.remove_prefix(10);
    request.challenge = MCIMD_TRY(parse_umts(message));
  } else if (message.starts_with("GSM-AUTH:")) {
    message.remove_prefix(9);
    request.challenge = MCIMD_TRY(parse_gsm(message));
  } else {
    return fail(Code::Unsupported, "CTRL-REQ-SIM asks for neither UMTS-AUTH nor GSM-AUTH");
  }
  return std::optional<SimRequest>(std::move(request));
}

Result<SecureString> format_umts_auth(uint32_t network_id, std::span<const uint8_t> res,
                                      std::span<const uint8_t> ck, std::span<const uint8_t> ik) {
  if (res.size() < kResMinSize || res.size() > kResMaxSize)
    return fail(Code::InvalidArgument, "RES is " + std::to_string(res.size()) + " bytes, expected 4 to 16");
  MCIMD_CHECK(check_size(ck, kKeySize, "CK"));
  MCIMD_CHECK(check_size(ik, kKeySize, "IK"));
  const std::string prefix = response_prefix(network_id) + "UMTS-AUTH:";
  SecureString out;
  out.reserve(prefix.size() + 2 * (ik.size() + ck.size() + res.size()) + 2);
  out.append(prefix.data(), prefix.size());
  // wpa_supplicant reads IK first, then CK, then RES (eap_aka_ext_sim_result).
  append_hex(out, ik);
  out.push_back(':');
  append_hex(out, ck);
  out.push_back(':');
  append_hex(out, res);
  return out;
}

Result<std::string> format_umts_auts(uint32_t network_id, std::span<const uint8_t> auts) {
  MCIMD_CHECK(check_size(auts, kAutsSize, "AUTS"));
  std::string out = response_prefix(network_id) + "UMTS-AUTS:";
  append_hex(out, auts);
  return out;
}

std::string format_umts_fail(uint32_t network_id) { return response_prefix(network_id) + "UMTS-FAIL"; }

Result<SecureString> format_gsm_auth(uint32_t network_id, const std::vector<GsmTriplet>& triplets,
                                     std::size_t expected_count) {
  if (triplets.size() != expected_count)
    return fail(Code::InvalidArgument, "GSM-AUTH has " + std::to_string(triplets.size()) + " answers for " +
                                           std::to_string(expected_count) + " RANDs");
  const std::string prefix = response_prefix(network_id) + "GSM-AUTH";
  SecureString out(prefix.data(), prefix.size());
  for (const GsmTriplet& t : triplets) {
    MCIMD_CHECK(check_size(t.kc, kKcSize, "Kc"));
    MCIMD_CHECK(check_size(t.sres, kSresSize, "SRES"));
    // eap_sim_ext_sim_result reads Kc before SRES for each RAND.
    out.push_back(':');
    append_hex(out, t.kc);
    out.push_back(':');
    append_hex(out, t.sres);
  }
  return out;
}

std::string format_gsm_fail(uint32_t network_id) { return response_prefix(network_id) + "GSM-FAIL"; }

Result<std::string> format_identity(uint32_t network_id, std::string_view identity) {
  if (identity.empty()) return fail(Code::InvalidArgument, "The identity is empty");
  if (identity.size() > kMaxIdentitySize)
    return fail(Code::InvalidArgument, "The identity is longer than " + std::to_string(kMaxIdentitySize) + " characters");
  for (char c : identity)
    if (c <= ' ' || c > '~' || c == ':')
      return fail(Code::InvalidArgument, "The identity has a character that is not printable ASCII or is ':'");
  return "CTRL-RSP-IDENTITY-" + std::to_string(network_id) + ":" + std::string(identity);
}

}  // namespace mcimd::wpasim
