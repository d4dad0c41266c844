#pragma once
// What the mcim-store unit tests share: a software Anchor whose counter lives in a file, and
// profiles, attestation records and SQN arrays to store.
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>

#include "aka/sqn.hpp"
#include "mcim-store/store.hpp"

namespace mcimd::test {

// The TPM stand-in. The counter's value lives in a file, so that it survives reopening the store
// and increments made by a child process, as a TPM's would (plain writes: a test's hook on the
// store's atomic writes sees only the store's own). The MAC is HMAC-SHA-256 under a software key;
// boot counts are whatever the test sets.
class FakeAnchor final : public store::Anchor {
 public:
  explicit FakeAnchor(std::filesystem::path path, uint64_t initial = 1000) : path_(std::move(path)) {
    if (!std::filesystem::exists(path_)) set(initial);
  }
  Result<uint64_t> counter() override { return value(); }
  Result<uint64_t> increment() override {
    if (fail_increments > 0) {
      --fail_increments;
      return fail(Code::TpmFailure, "increment refused by the test");
    }
    set(value() + 1);
    return value();
  }
  Result<store::BootCounts> boot_counts() override { return boot; }
  Result<Bytes> mac(std::span<const uint8_t> data) override {
    Bytes out(EVP_MAX_MD_SIZE);
    std::size_t len = 0;
    if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(), data.size(),
                   out.data(), out.size(), &len))
      return fail(Code::Internal, "HMAC failed");
    out.resize(len);
    return out;
  }

  uint64_t value() const {
    std::ifstream in(path_);
    uint64_t v = 0;
    in >> v;
    return v;
  }
  void set(uint64_t v) { std::ofstream(path_, std::ios::trunc) << v; }

  int fail_increments = 0;  // how many of the next increments fail
  store::BootCounts boot{.reset_count = 7, .restart_count = 0};
  Bytes key = Bytes(32, 0x5a);

 private:
  std::filesystem::path path_;
};

// A fresh SQN array with the default parameters, seeded at sqn.
inline aka::SqnArray sqns_at(uint64_t sqn) {
  auto a = aka::SqnArray::create(aka::SqnParameters{});
  if (!a) throw std::runtime_error(a.error().describe());
  a->seed(sqn);
  return std::move(*a);
}

inline std::string sha256_hex(std::span<const uint8_t> data) {
  std::array<uint8_t, SHA256_DIGEST_LENGTH> digest{};
  SHA256(data.data(), data.size(), digest.data());
  return to_hex(digest);
}

// The profile new_metadata() offers, with valid metadata and blobs made distinct by the ICCID's
// last digit.
inline store::Profile make_profile(const store::Store& s, const std::string& iccid,
                                   store::ProfileState state = store::ProfileState::Disabled) {
  store::Profile p;
  p.meta = s.new_metadata();
  p.meta.iccid = iccid;
  p.meta.imsi = "001010000000001";
  p.meta.operator_id = "00101";
  p.meta.state = state;
  p.meta.authority = Bytes{0x00, 0x0b, 0xa1, 0xa2, 0xa3};
  const auto tag = static_cast<uint8_t>(iccid.back());
  p.k = store::Blob{Bytes{0x00, 0x03, 0x01, 0x02, tag}, Bytes{0x00, 0x02, 0xaa, tag}};
  p.opc = store::Blob{Bytes{0x00, 0x03, 0x11, 0x12, tag}, Bytes{0x00, 0x02, 0xbb, tag}};
  return p;
}

inline store::AttestationRecord make_attestation(uint8_t tag, std::optional<std::string> ek_type = std::nullopt) {
  return store::AttestationRecord{store::Blob{Bytes{0x00, 0x02, 0xa0, tag}, Bytes{0x00, 0x02, 0xb0, tag}},
                                  std::move(ek_type)};
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
inline void spill(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace mcimd::test
