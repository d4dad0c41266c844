#include "operator/eap_sim_db.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <span>
#include <utility>
#include <vector>

#include "aka/sqn.hpp"
#include "aka/usim.hpp"
#include "attestation/verifier_tpm.hpp"
#include "common/bytes.hpp"

namespace mcimd::op {

namespace {

constexpr std::string_view kLog = "eap-sim-db: ";

// hostapd keeps an IMSI of up to 20 characters (struct eap_sim_db_pending), so an IMSI of up to
// 20 digits is a well-formed request, answered FAILURE unless it is the one served.
constexpr std::size_t kMaxRequestImsi = 20;
// RFC 4186 §9.3: EAP-SIM uses two or three RANDs; hostapd asks for up to EAP_SIM_MAX_CHAL = 3.
constexpr unsigned kMaxTriplets = 3;
// TS 33.102 §6.3.2: SQN is 48 bits.
constexpr unsigned kSqnBits = 48;
// TS 33.102 C.2.1: the USIM refuses a SEQ more than Δ = 2^28 above its highest (SqnParameters).
constexpr uint64_t kDelta = aka::SqnParameters{}.delta;
// SqnParameters accepts 1..10 IND bits (SqnArray::create).
constexpr unsigned kMaxIndBits = 10;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Exactly 2·N hex digits (no "0x", no separators) → N bytes; nullopt otherwise.
template <std::size_t N>
std::optional<std::array<uint8_t, N>> hex_field(std::string_view text) {
  if (text.size() != 2 * N || !std::all_of(text.begin(), text.end(), is_hex_digit)) return std::nullopt;
  auto bytes = from_hex(text, "field", N);
  if (!bytes) return std::nullopt;
  std::array<uint8_t, N> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// Lower-case hex written straight into `out`, so no temporary copy of a key is left behind.
void append_hex(std::string& out, std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0x0f];
  }
}

// Fields separated by single spaces; an empty one (a doubled, leading or trailing space) is kept
// so the caller can refuse it.
std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  for (;;) {
    const auto space = text.find(' ');
    fields.push_back(text.substr(0, space));
    if (space == std::string_view::npos) return fields;
    text.remove_prefix(space + 1);
  }
}

struct Verb {
  std::string_view name;
  std::size_t fields;  // the verb included
};
constexpr std::array kVerbs{Verb{"AKA-REQ-AUTH", 2}, Verb{"AKA-AUTS", 4}, Verb{"SIM-REQ-AUTH", 3}};

std::string failure(std::string_view response, std::string_view imsi) {
  return std::string(response) + ' ' + std::string(imsi) + " FAILURE";
}

}  // namespace

Result<aka::Rand> openssl_rand() {
  aka::Rand rand{};
  if (RAND_bytes(rand.data(), static_cast<int>(rand.size())) != 1)
    return fail(Code::Internal, "RAND_bytes: " + attestation::openssl_error());
  return rand;
}

Result<EapSimDb> EapSimDb::create(SubscriberKeys keys, EapSimDbOptions options, RandSource rand, EapSimDbLog log) {
  // TS 23.003 §2.2: MCC (3) + MNC (2–3) + MSIN, at most 15 digits.
  if (options.imsi.size() < 6 || options.imsi.size() > 15 || !all_digits(options.imsi))
    return fail(Code::InvalidArgument, "--imsi: an IMSI is 6–15 digits");
  if (options.ind_bits < 1 || options.ind_bits > kMaxIndBits)
    return fail(Code::InvalidArgument, "--ind-bits: IND takes 1 to 10 bits");
  if ((aka::sqn_to_u64(options.first_sqn) >> options.ind_bits) == 0)
    return fail(Code::InvalidArgument, "--sqn: its SEQ (SQN >> " + std::to_string(options.ind_bits) +
                                           ") is 0, which no USIM accepts (TS 33.102 C.2.2)");
  if (!rand) rand = openssl_rand;
  return EapSimDb(std::move(keys), std::move(options), std::move(rand), std::move(log));
}

EapSimDb::EapSimDb(SubscriberKeys keys, EapSimDbOptions options, RandSource rand, EapSimDbLog log)
    : keys_(std::move(keys)), options_(std::move(options)), rand_(std::move(rand)), log_(std::move(log)) {
  next_sqn_ = aka::sqn_to_u64(options_.first_sqn);
}

void EapSimDb::say(const std::string& line) const {
  if (log_) log_(line);
}

std::optional<std::string> EapSimDb::handle(std::string_view datagram) {
  if (datagram.size() > kEapSimDbMaxRequest) {
    say(std::string(kLog) + "ignored request: longer than " + std::to_string(kEapSimDbMaxRequest) + " bytes");
    return std::nullopt;
  }
  if (!datagram.empty() && datagram.back() == '\n') datagram.remove_suffix(1);
  const auto fields = split_fields(datagram);
  const auto verb = std::find_if(kVerbs.begin(), kVerbs.end(), [&](const Verb& v) { return v.name == fields[0]; });
  if (verb == kVerbs.end()) {
    // The bytes are not echoed: the log is no place for whatever a sender chose to write.
    say(std::string(kLog) + "ignored request: unknown verb");
    return std::nullopt;
  }
  const std::string ignored = std::string(kLog) + "ignored " + std::string(verb->name) + " request: ";
  if (fields.size() != verb->fields) {
    say(ignored + std::to_string(fields.size() - 1) + " fields after the verb, expected " +
        std::to_string(verb->fields - 1));
    return std::nullopt;
  }
  if (std::any_of(fields.begin(), fields.end(), [](std::string_view f) { return f.empty(); })) {
    say(ignored + "an empty field (fields are separated by one space)");
    return std::nullopt;
  }
  const std::string_view imsi = fields[1];
  if (imsi.size() > kMaxRequestImsi || !all_digits(imsi)) {
    say(ignored + "the IMSI is not 1–20 digits");
    return std::nullopt;
  }
  if (verb->name == "AKA-REQ-AUTH") return aka_request(imsi);
  if (verb->name == "SIM-REQ-AUTH") return sim_request(imsi, fields[2]);
  aka_resynchronise(imsi, fields[2], fields[3]);
  return std::nullopt;
}

std::optional<std::string> EapSimDb::aka_request(std::string_view imsi) {
  const std::string who = "IMSI " + std::string(imsi);
  if (imsi != options_.imsi) {
    say(std::string(kLog) + "no AKA vector for unknown " + who + ": FAILURE");
    return failure("AKA-RESP-AUTH", imsi);
  }
  if (!next_sqn_) {
    say(std::string(kLog) + "Failed to make an AKA vector for " + who +
        ": SEQ exhausted (restart with a new --sqn and re-provision the USIM): FAILURE");
    return failure("AKA-RESP-AUTH", imsi);
  }
  auto rand = rand_();
  if (!rand) {
    say(std::string(kLog) + "Failed to draw RAND for " + who + ": " + rand.error().describe() + ": FAILURE");
    return failure("AKA-RESP-AUTH", imsi);
  }
  const uint64_t sqn = *next_sqn_;
  auto vector = aka::generate_vector(keys_.k(), keys_.opc(), *rand, aka::sqn_from_u64(sqn), options_.amf);
  if (!vector) {
    say(std::string(kLog) + "Failed to make an AKA vector for " + who + ": " + vector.error().describe() +
        ": FAILURE");
    return failure("AKA-RESP-AUTH", imsi);
  }
  advance_from(sqn);
  ++vectors_;

  // Reserved once, so that no reallocation leaves a copy of CK or IK in freed memory.
  std::string reply;
  reply.reserve(256);
  reply += "AKA-RESP-AUTH ";
  reply += imsi;
  for (std::span<const uint8_t> field : {std::span<const uint8_t>(vector->rand), std::span<const uint8_t>(vector->autn),
                                         std::span<const uint8_t>(vector->ik), std::span<const uint8_t>(vector->ck),
                                         std::span<const uint8_t>(vector->xres)}) {
    reply += ' ';
    append_hex(reply, field);
  }
  wipe(&*vector, sizeof(aka::AuthVector));

  const uint64_t mask = (uint64_t{1} << options_.ind_bits) - 1;
  say(std::string(kLog) + "AKA vector " + std::to_string(vectors_) + " for " + who + " (SEQ " +
      std::to_string(sqn >> options_.ind_bits) + ", IND " + std::to_string(sqn & mask) + ")");
  return reply;
}

void EapSimDb::aka_resynchronise(std::string_view imsi, std::string_view auts_hex, std::string_view rand_hex) {
  const std::string ignored = std::string(kLog) + "ignored AKA-AUTS request: ";
  const auto auts = hex_field<sizeof(aka::Auts)>(auts_hex);
  if (!auts) return say(ignored + "AUTS is not 28 hex digits");
  const auto rand = hex_field<sizeof(aka::Rand)>(rand_hex);
  if (!rand) return say(ignored + "RAND is not 32 hex digits");
  const std::string who = "IMSI " + std::string(imsi);
  if (imsi != options_.imsi) return say(ignored + "unknown " + who);

  // TS 33.102 §6.3.5: SQN_MS from AUTS = SQN_MS ⊕ AK* ‖ MAC-S, trusted only once MAC-S verifies.
  auto sqn_ms = aka::verify_auts(keys_.k(), keys_.opc(), *rand, *auts);
  if (!sqn_ms) {
    if (sqn_ms.error().code == Code::MacFailure)
      return say(std::string(kLog) + "AUTS for " + who + " refused: MAC-S does not verify (SQN kept)");
    return say(std::string(kLog) + "Failed to verify AUTS for " + who + ": " + sqn_ms.error().describe() +
               " (SQN kept)");
  }
  const unsigned bits = options_.ind_bits;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  const uint64_t ms = aka::sqn_to_u64(*sqn_ms);
  const uint64_t seq_ms = ms >> bits;
  const std::string reported = "SEQ " + std::to_string(seq_ms) + " IND " + std::to_string(ms & mask);
  // TS 33.102 §6.3.5 (ii)–(v): SQN_HE is reset only when the next SQN would not be accepted, i.e.
  // its SEQ is not above SEQ_MS or more than Δ above it (C.2.1); an old AUTS replayed never
  // moves the counter back.
  if (next_sqn_) {
    const uint64_t seq_next = *next_sqn_ >> bits;
    if (seq_next > seq_ms && seq_next - seq_ms <= kDelta)
      return say(std::string(kLog) + "AUTS for " + who + " verified, SQN kept: the next SEQ " +
                 std::to_string(seq_next) + " is already above SQN_MS (" + reported + ")");
  }
  advance_from(ms);
  if (!next_sqn_)
    return say(std::string(kLog) + "resynchronised " + who + " to " + reported +
               " from AUTS; SEQ exhausted, vectors fail from now on");
  say(std::string(kLog) + "resynchronised " + who + " to " + reported + " from AUTS");
}

std::optional<std::string> EapSimDb::sim_request(std::string_view imsi, std::string_view max_chal) {
  if (max_chal.size() > 9 || !all_digits(max_chal)) {
    say(std::string(kLog) + "ignored SIM-REQ-AUTH request: max_chal is not a number of 1–9 digits");
    return std::nullopt;
  }
  const std::string who = "IMSI " + std::string(imsi);
  if (imsi != options_.imsi) {
    say(std::string(kLog) + "no GSM triplets for unknown " + who + ": FAILURE");
    return failure("SIM-RESP-AUTH", imsi);
  }
  const unsigned asked = static_cast<unsigned>(std::stoul(std::string(max_chal)));
  const unsigned count = std::clamp(asked, 1u, kMaxTriplets);

  std::string reply;
  reply.reserve(256);
  reply += "SIM-RESP-AUTH ";
  reply += imsi;
  std::vector<aka::Rand> used;
  for (unsigned i = 0; i < count; ++i) {
    auto rand = rand_();
    // RFC 4186 §9.3: the RANDs of one challenge must differ (the peer refuses repeats).
    if (rand && std::find(used.begin(), used.end(), *rand) != used.end())
      rand = fail(Code::Internal, "the random source repeated a RAND");
    if (!rand) {
      wipe(reply.data(), reply.size());
      say(std::string(kLog) + "Failed to draw RAND for " + who + ": " + rand.error().describe() + ": FAILURE");
      return failure("SIM-RESP-AUTH", imsi);
    }
    used.push_back(*rand);
    // TS 33.102 §6.8.1.2: the AuC derives a GSM triplet from a UMTS quintuplet, SRES by c2 from
    // XRES and Kc by c3 from CK and IK; f1's SQN and AMF play no part.
    auto outputs = aka::milenage(keys_.k(), keys_.opc(), *rand, aka::Sqn{}, options_.amf);
    if (!outputs) {
      wipe(reply.data(), reply.size());
      say(std::string(kLog) + "Failed to make GSM triplets for " + who + ": " + outputs.error().describe() +
          ": FAILURE");
      return failure("SIM-RESP-AUTH", imsi);
    }
    auto triplet = aka::gsm_convert(outputs->res, outputs->ck, outputs->ik);
    wipe(&*outputs, sizeof(aka::MilenageOutputs));
    reply += ' ';
    append_hex(reply, triplet.kc);
    reply += ':';
    append_hex(reply, triplet.sres);
    reply += ':';
    append_hex(reply, *rand);
    wipe(&triplet, sizeof triplet);
  }
  say(std::string(kLog) + std::to_string(count) + (count == 1 ? " GSM triplet for " : " GSM triplets for ") + who);
  return reply;
}

void EapSimDb::advance_from(uint64_t sqn) {
  const unsigned bits = options_.ind_bits;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  const uint64_t seq = (sqn >> bits) + 1;
  if (seq >> (kSqnBits - bits) != 0) {
    next_sqn_.reset();  // SEQ has no room left: never wrap to values the USIM already used
    return;
  }
  next_sqn_ = (seq << bits) | (((sqn & mask) + 1) & mask);
}

}  // namespace mcimd::op
