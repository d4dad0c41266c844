#pragma once
// Byte buffers: plain Bytes for public data, SecureBytes for secrets (locked in RAM so they
// never reach swap, wiped with OPENSSL_cleanse when freed, excluded from core dumps).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace mcimd {

using Bytes = std::vector<uint8_t>;

namespace detail {
void* secure_allocate(std::size_t n);
void secure_deallocate(void* p, std::size_t n) noexcept;
// Pages that hold at least one live secret (each stays locked while it does), for tests.
std::size_t locked_secret_pages();
}  // namespace detail

template <class T>
struct SecureAllocator {
  using value_type = T;
  SecureAllocator() noexcept = default;
  template <class U>
  SecureAllocator(const SecureAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(detail::secure_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { detail::secure_deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const SecureAllocator<U>&) const noexcept { return true; }
};

using SecureBytes = std::vector<uint8_t, SecureAllocator<uint8_t>>;
using SecureString = std::basic_string<char, std::char_traits<char>, SecureAllocator<char>>;

// Lower-case hex.
std::string to_hex(std::span<const uint8_t> data);
// Accepts upper/lower case, optional "0x" prefix; odd length or a non-hex digit → InvalidArgument
// naming `what`. With expected_len set, a different decoded length is an error too.
Result<Bytes> from_hex(std::string_view hex, std::string_view what, std::optional<std::size_t> expected_len = {});
Result<SecureBytes> secret_from_hex(std::string_view hex, std::string_view what,
                                    std::optional<std::size_t> expected_len = {});

// RFC 4648 §5 base64url without padding; decoding accepts padding.
std::string base64url_encode(std::span<const uint8_t> data);
Result<Bytes> base64url_decode(std::string_view text, std::string_view what);

// Constant-time comparison for MACs.
bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b);

// Wipes a buffer in a way the compiler cannot drop.
void wipe(void* p, std::size_t n) noexcept;

// Marks the process undumpable and keeps core dumps out (call once at start of a daemon).
void harden_process_memory();

}  // namespace mcimd
