// Hostile signed PCR policy documents (what `mcimctl policy add` hands the daemon) through the
// strict parser and the software checks against a fixed authority. Any verdict is fine; a crash
// is not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/pcr_policy.hpp"

namespace {

// A fixed P-256 public key (any key does: the fuzzer cannot sign for it).
constexpr std::string_view kAuthority =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJhRIaoupM42/K7zbyx8sQ/d5+iRM\n"
    "N3Hgu1BIdInHZpS5VE4Pt+GHZjCb23KiMWHpmEBHzwgW91BN3eOEoNVyfw==\n"
    "-----END PUBLIC KEY-----\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcimd;
  static const auto authority = protocol::policy_authority_from_pem(kAuthority);
  if (!authority) __builtin_trap();
  auto policy = protocol::signed_pcr_policy_from_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!policy) return 0;
  (void)protocol::verify_pcr_policy(*policy, *authority);
  (void)protocol::to_json(*policy);
  return 0;
}
