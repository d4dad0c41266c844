#include "common/bytes.hpp"

#include <openssl/crypto.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <cstring>
#include <new>

namespace mcimd {

namespace detail {

// Every page that holds a secret stays locked while any secret lives on it: mlock/munlock do not
// count, so unlocking a freed buffer's pages would unlock a neighbour that shares one. Locking is
// best effort (RLIMIT_MEMLOCK); the wipe on free always happens.
namespace {

std::mutex g_lock_mutex;
std::map<uintptr_t, unsigned>& locked_pages() {
  static std::map<uintptr_t, unsigned> pages;  // page address → secrets on it
  return pages;
}

uintptr_t page_size() {
  static const uintptr_t size = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

void* secure_allocate(std::size_t n) {
  if (n == 0) n = 1;
  void* p = std::malloc(n);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, n);  // also keeps g++ from warning that mlock reads it uninitialised
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~(page_size() - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
  std::lock_guard lock(g_lock_mutex);
  for (uintptr_t page = first; page < end; page += page_size()) ++locked_pages()[page];
  (void)mlock(p, n);
  return p;
}

void secure_deallocate(void* p, std::size_t n) noexcept {
  if (!p) return;
  if (n == 0) n = 1;
  OPENSSL_cleanse(p, n);
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~(page_size() - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
  {
    std::lock_guard lock(g_lock_mutex);
    auto& pages = locked_pages();
    for (uintptr_t page = first; page < end; page += page_size()) {
      auto it = pages.find(page);
      if (it == pages.end() || --it->second > 0) continue;
      pages.erase(it);
      (void)munlock(reinterpret_cast<void*>(page), page_size());
    }
  }
  std::free(p);
}

std::size_t locked_secret_pages() {
  std::lock_guard lock(g_lock_mutex);
  return locked_pages().size();
}

}  // namespace detail

void wipe(void* p, std::size_t n) noexcept { OPENSSL_cleanse(p, n); }

void harden_process_memory() {
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct rlimit none {0, 0};
  (void)setrlimit(RLIMIT_CORE, &none);
}

std::string to_hex(std::span<const uint8_t> data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <class Out>
Result<Out> decode_hex(std::string_view hex, std::string_view what, std::optional<std::size_t> expected_len) {
  if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
  if (hex.size() % 2 != 0)
    return fail(Code::InvalidArgument, std::string(what) + ": hex string has an odd number of digits");
  Out out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return fail(Code::InvalidArgument,
                  std::string(what) + ": not a hex digit at position " + std::to_string(hi < 0 ? i : i + 1));
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  if (expected_len && out.size() != *expected_len)
    return fail(Code::InvalidArgument, std::string(what) + ": expected " + std::to_string(*expected_len) +
                                           " bytes, got " + std::to_string(out.size()));
  return out;
}

}  // namespace

Result<Bytes> from_hex(std::string_view hex, std::string_view what, std::optional<std::size_t> expected_len) {
  return decode_hex<Bytes>(hex, what, expected_len);
}

Result<SecureBytes> secret_from_hex(std::string_view hex, std::string_view what,
                                    std::optional<std::size_t> expected_len) {
  return decode_hex<SecureBytes>(hex, what, expected_len);
}

std::string base64url_encode(std::span<const uint8_t> data) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | data[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(alphabet[(v >> s) & 63]);
  }
  std::size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t(data[i]) << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
  }
  return out;
}

Result<Bytes> base64url_decode(std::string_view text, std::string_view what) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (text.size() % 4 == 1) return fail(Code::InvalidArgument, std::string(what) + ": truncated base64url");
  Bytes out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) return fail(Code::InvalidArgument, std::string(what) + ": not a base64url character");
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  return out;
}

bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mcimd
