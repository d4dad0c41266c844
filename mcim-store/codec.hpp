#pragma once
// Internal: the JSON files of the store and the checks every field gets. Decoders treat their
// input as hostile: any type, range or format problem is an error naming the file and field,
// never an exception.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aka/sqn.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "mcim-store/store.hpp"

namespace mcimd::store::detail {

inline constexpr unsigned kFormat = 1;  // "format" of every file; bumped on incompatible change

// Size limits for reading (hostile files must not exhaust memory).
inline constexpr std::size_t kMaxStoreFile = 256 * 1024;
inline constexpr std::size_t kMaxMetadataFile = 16 * 1024;
inline constexpr std::size_t kMaxSqnFile = 64 * 1024;  // 1024 slots of up to 15 digits fit easily
// A marshaled TPM2B: 2-byte size + at most 65535 bytes.
inline constexpr std::size_t kMaxBlob = 2 + 65535;

struct ProfileRecord {
  std::string id;
  uint64_t meta_generation = 0;  // generation profile.json must carry
  uint64_t sqn_generation = 0;   // generation sqn.json must carry
};

struct StoreFile {
  uint64_t generation = 0;
  uint32_t next_index = 0;
  std::optional<std::string> active;
  std::optional<Bytes> srk;
  std::vector<ProfileRecord> profiles;  // ordered by index
};

struct MetadataFile {
  uint64_t generation = 0;
  ProfileMetadata meta;
};

struct SqnFile {
  uint64_t generation = 0;
  std::vector<uint64_t> seq;
};

// "p<index>" → index; nullopt unless exactly "p" + decimal uint32 without leading zeros.
std::optional<uint32_t> parse_profile_id(std::string_view id);
std::string profile_id(uint32_t index);

bool all_digits(std::string_view s);
bool valid_iccid(std::string_view s);  // ITU-T E.118: 18–20 digits
bool valid_imsi(std::string_view s);   // TS 23.003 §2.2: at most 15 digits; 6 = MCC + MNC + 1
bool valid_operator_id(std::string_view s);
bool valid_algorithm(std::string_view s);
bool valid_pcr_policy(std::string_view s);
// Ranges SqnArray accepts (aka/sqn.hpp), checked here so the message names the field.
// Returns the name of the first bad field, or nullopt.
std::optional<std::string> bad_sqn_parameter(const aka::SqnParameters& p);

// Checks every field of metadata; the error has `code` and starts with `where`.
Status validate_metadata(const ProfileMetadata& meta, Code code, std::string_view where);

std::string encode_store(const StoreFile& file);
std::string encode_metadata(uint64_t generation, const ProfileMetadata& meta);
std::string encode_sqn(uint64_t generation, const aka::SqnArray& sqns);

// `file` names the file in error messages (StoreCorrupt).
Result<StoreFile> decode_store(std::string_view text, const std::string& file);
Result<MetadataFile> decode_metadata(std::string_view text, const std::string& file);
// Checks the array against the profile's parameters (length 2^ind_bits, SEQ range).
Result<SqnFile> decode_sqn(std::string_view text, const std::string& file, const aka::SqnParameters& params);

}  // namespace mcimd::store::detail
