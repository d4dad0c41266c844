// Hostile store.json files through the store's strict decoder (which runs before the MAC is
// checked, so it sees whatever is on disk). Any verdict is fine; a crash is not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mcim-store/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)mcimd::store::detail::decode_store(std::string_view(reinterpret_cast<const char*>(data), size), "store.json");
  return 0;
}
