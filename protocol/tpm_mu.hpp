#pragma once
// Internal to protocol/: tss2-mu helpers. The only protocol header that includes <tss2/...>.
#include <tss2/tss2_mu.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/c_handle.hpp"
#include "common/error.hpp"

namespace mcimd::protocol {

// Unmarshals a whole buffer as T; InvalidArgument naming `what` when it is malformed or longer.
template <class T, auto Unmarshal>
Result<T> unmarshal(std::span<const uint8_t> data, std::string_view what) {
  T value{};
  size_t offset = 0;
  TSS2_RC rc = Unmarshal(data.data(), data.size(), &offset, &value);
  if (rc != TSS2_RC_SUCCESS || offset != data.size())
    return fail(Code::InvalidArgument, "Malformed " + std::string(what) + ": not a complete marshaled TPM structure");
  return value;
}

// TPM_ALG_ID ↔ "sha1" | "sha256" | "sha384" | "sha512".
std::optional<std::string> hash_name(uint16_t alg);
std::optional<uint16_t> hash_alg(std::string_view name);

}  // namespace mcimd::protocol
