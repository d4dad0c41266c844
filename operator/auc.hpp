#pragma once
// Authentication centre (AuC) side of 3GPP AKA for the reference operator: subscriber keys from
// text, Milenage outputs and AUTN for a challenge, SQN_MS recovery from AUTS, and their text and
// JSON renderings (lower-case hex) for scripts that play the network.
#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "aka/block_cipher.hpp"
#include "aka/milenage.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::op {

// K and OPc of one subscriber. K stays in locked, wiped memory inside the cipher.
class SubscriberKeys {
 public:
  // From hex text, each error naming its option (`k_option`, ...): K is 16 bytes; exactly one of
  // OP and OPc (16 bytes each) must be given; with OP, OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1).
  struct HexInput {
    std::string_view k;
    std::optional<std::string_view> op;
    std::optional<std::string_view> opc;
    std::string_view k_option = "--k";
    std::string_view op_option = "--op";
    std::string_view opc_option = "--opc";
  };
  [[nodiscard]] static Result<SubscriberKeys> from_hex(const HexInput& input);

  aka::BlockCipher& k() { return k_; }
  const aka::Block& opc() const { return opc_; }

  SubscriberKeys(SubscriberKeys&&) noexcept = default;
  SubscriberKeys& operator=(SubscriberKeys&&) noexcept = default;
  ~SubscriberKeys();

 private:
  SubscriberKeys(aka::OpenSslAes k, const aka::Block& opc) : k_(std::move(k)), opc_(opc) {}
  aka::OpenSslAes k_;
  aka::Block opc_{};
};

// A fixed-size value from hex; InvalidArgument naming `option` on a bad digit or wrong length.
template <std::size_t N>
[[nodiscard]] Result<std::array<uint8_t, N>> fixed_from_hex(std::string_view hex, std::string_view option) {
  auto bytes = MCIMD_TRY(secret_from_hex(hex, option, N));
  std::array<uint8_t, N> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

// Everything the network computes for one challenge (TS 35.206 f1..f5*, TS 33.102 §6.3.2 AUTN).
struct MilenageReport {
  aka::Block opc{};
  aka::MilenageOutputs outputs;
  aka::Autn autn{};
};
[[nodiscard]] Result<MilenageReport> compute_milenage(SubscriberKeys& keys, const aka::Rand& rand, const aka::Sqn& sqn,
                                                      const aka::Amf& amf);

// "name: hex" lines in the order opc, mac_a, mac_s, res, ck, ik, ak, ak_star, autn.
std::string format_text(const MilenageReport& report);
// One object with the same keys and lower-case hex strings.
nlohmann::ordered_json to_json(const MilenageReport& report);

// Resynchronisation (TS 33.102 §6.3.5): SQN_MS from AUTS once MAC-S verified (MacFailure otherwise).
struct AutsReport {
  aka::Sqn sqn_ms{};
  aka::Mac mac_s{};
};
[[nodiscard]] Result<AutsReport> recover_sqn_ms(SubscriberKeys& keys, const aka::Rand& rand, const aka::Auts& auts);

// "sqn_ms: hex" and "mac_s: hex" lines / the same as one JSON object.
std::string format_text(const AutsReport& report);
nlohmann::ordered_json to_json(const AutsReport& report);

}  // namespace mcimd::op
