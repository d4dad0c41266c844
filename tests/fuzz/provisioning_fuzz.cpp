// Hostile package headers and package requests: the operator's signature is checked before a
// header is read, but a signing operator can still be wrong or compromised, and a package
// request comes from the network unsigned. Whatever the parsers accept must write back to a
// document that parses to the same message, and the device's checks must give a verdict on it.
// Any verdict is fine; a crash, or a message that does not survive its own round trip, is not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "attestation/package_check.hpp"
#include "protocol/provisioning.hpp"

namespace {

template <class T, class Parse>
void expect_round_trip(const T& message, Parse parse) {
  auto again = parse(mcimd::protocol::to_json(message));
  if (!again || !(*again == message)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcimd;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto header = protocol::package_header_from_json(text)) {
    expect_round_trip(*header, protocol::package_header_from_json);
    const Bytes nonces[] = {header->device_nonce};
    attestation::DeviceExpectations expect{header->device, nonces, 0, header->srk_name, {}, {"milenage"}};
    (void)attestation::check_package_for_device(*header, expect);
  }
  if (auto request = protocol::package_request_from_json(text)) expect_round_trip(*request, protocol::package_request_from_json);
  return 0;
}
