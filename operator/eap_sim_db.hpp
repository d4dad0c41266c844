#pragma once
// The authentication centre behind hostapd's EAP-SIM, EAP-AKA and EAP-AKA' server, for one
// subscriber: answers the text requests of hostapd's eap_sim_db interface (one a datagram, its
// external "HLR/AuC gateway" protocol) with Milenage vectors and GSM triplets. No sockets here:
// eap_sim_db_cli.cpp moves the datagrams.
//
//   AKA-REQ-AUTH <IMSI>                     → AKA-RESP-AUTH <IMSI> <RAND> <AUTN> <IK> <CK> <RES>
//   AKA-AUTS <IMSI> <AUTS> <RAND>           → (no reply; SQN resynchronised when MAC-S verifies)
//   SIM-REQ-AUTH <IMSI> <max_chal>          → SIM-RESP-AUTH <IMSI> <Kc>:<SRES>:<RAND> ...
//   an IMSI not served, or an error         → AKA-RESP-AUTH <IMSI> FAILURE / SIM-RESP-AUTH <IMSI> FAILURE
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "aka/milenage.hpp"
#include "operator/auc.hpp"

namespace mcimd::op {

// The longest request hostapd sends is AKA-AUTS with a 20-character IMSI (100 bytes); anything
// longer is refused unread.
inline constexpr std::size_t kEapSimDbMaxRequest = 128;

struct EapSimDbOptions {
  std::string imsi;           // the one subscriber served: 6–15 digits (TS 23.003 §2.2)
  aka::Sqn first_sqn{};       // SQN of the first vector handed out: SEQ ‖ IND, SEQ ≥ 1
  aka::Amf amf{0x80, 0x00};   // TS 33.102 Annex H: separation bit set, as EAP-AKA' requires
  unsigned ind_bits = 5;      // TS 33.102 C.3.2: 2^5 = 32 IND values, as the USIM's SqnArray
};

// Draws a fresh RAND (TS 33.102 §6.3.2: unpredictable); an error makes the reply FAILURE.
using RandSource = std::function<Result<aka::Rand>()>;
[[nodiscard]] Result<aka::Rand> openssl_rand();

// Receives one line for each request answered or refused. Lines name the IMSI, SEQ and IND,
// never K, OPc, RAND, RES, CK, IK, Kc or the bytes of a refused request.
using EapSimDbLog = std::function<void(std::string_view line)>;

class EapSimDb {
 public:
  // InvalidArgument naming the option (--imsi, --ind-bits, --sqn) when the IMSI is not 6–15
  // digits, ind_bits is outside 1..10 (SqnParameters' range) or the first SEQ is 0 (TS 33.102
  // C.2.2: a USIM never accepts SEQ 0).
  [[nodiscard]] static Result<EapSimDb> create(SubscriberKeys keys, EapSimDbOptions options,
                                               RandSource rand = openssl_rand, EapSimDbLog log = {});

  // One request datagram (one trailing '\n' tolerated), its reply when it gets one. Checks, in
  // order, each failure logged and answered with nothing: at most kEapSimDbMaxRequest bytes; a
  // known verb; fields separated by single spaces, exactly as many as the verb takes; the IMSI
  // 1–20 digits; hex fields of exactly their length (AUTS 28, RAND 32 digits); max_chal 1–9
  // digits. A well-formed request for another IMSI is answered FAILURE (AKA-AUTS: logged only).
  //
  // SQN rule: the n-th vector carries SQN = SEQ ‖ IND with SEQ = SEQ0 + n − 1 and
  // IND = (IND0 + n − 1) mod 2^ind_bits, SEQ0 ‖ IND0 being first_sqn, so that SEQ always grows
  // and every IND slot of the USIM's array is used in turn (TS 33.102 C.3.2, C.3.4). After an
  // AUTS whose MAC-S verifies, SQN_HE is reset to SQN_MS (TS 33.102 §6.3.5) and the next vector
  // takes SEQ_MS + 1 and IND_MS + 1. SEQ past its 48 − ind_bits bits → FAILURE from then on.
  std::optional<std::string> handle(std::string_view datagram);

  // The SQN the next vector will carry; nullopt once SEQ is exhausted.
  std::optional<uint64_t> next_sqn() const { return next_sqn_; }

  EapSimDb(EapSimDb&&) noexcept = default;
  EapSimDb& operator=(EapSimDb&&) noexcept = default;

 private:
  EapSimDb(SubscriberKeys keys, EapSimDbOptions options, RandSource rand, EapSimDbLog log);

  std::optional<std::string> aka_request(std::string_view imsi);
  void aka_resynchronise(std::string_view imsi, std::string_view auts_hex, std::string_view rand_hex);
  std::optional<std::string> sim_request(std::string_view imsi, std::string_view max_chal);
  // Sets the next SQN to SEQ + 1 ‖ IND + 1 after `sqn`; exhausted when SEQ + 1 does not fit.
  void advance_from(uint64_t sqn);
  void say(const std::string& line) const;

  SubscriberKeys keys_;
  EapSimDbOptions options_;
  RandSource rand_;
  EapSimDbLog log_;
  std::optional<uint64_t> next_sqn_;
  uint64_t vectors_ = 0;
};

}  // namespace mcimd::op
