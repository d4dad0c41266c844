#pragma once
// Internal: store.json of format 3 (and 2, read) — the state it holds, its canonical text and MAC, and the
// checks every field gets. Decoders treat their input as hostile: any type, range or format
// problem is StoreCorrupt naming the file and the field, never an exception.
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

inline constexpr unsigned kFormat = 4;  // store.json's "format"; bumped on incompatible change
// The earlier format this version still reads: format 2 lacks the profile rules and origin and
// the provisioning state (all taken as absent); the next commit writes format 3.
inline constexpr unsigned kOldestReadableFormat = 2;
// Domain separation for the store MAC: the key signs nothing else with this prefix.
inline constexpr std::string_view kMacLabel{"mcimd-store-v2\0", 15};
inline constexpr std::size_t kMacSize = 32;  // HMAC-SHA-256
// Size limit for reading store.json (hostile files must not exhaust memory); commits that would
// exceed it are refused, so the store never writes what it cannot read back. 64 profiles with
// 1024-slot SQN arrays of 15-digit entries fit.
inline constexpr std::size_t kMaxStoreFile = 1 << 20;
// A marshaled TPM2B: 2-byte size + at most 65535 bytes.
inline constexpr std::size_t kMaxBlob = 2 + 65535;

// An object's name: the lower-case hex SHA-256 of its bytes (layout.hpp).
using ObjectName = std::string;

struct BlobRef {
  ObjectName public_area, private_area;
};

struct ProfileEntry {
  ProfileMetadata meta;
  std::vector<uint64_t> seq;  // the SQN array (aka::SqnArray::seq()) under meta.sqn
  BlobRef k, opc;
  std::optional<BlobRef> previous_k, previous_opc;  // set with meta.previous
};

struct AttestationEntry {
  BlobRef ak;
  std::optional<std::string> enrolled_ek_type;
};

// Everything the MAC covers.
struct State {
  uint64_t generation = 0;
  BootCounts boot_counts;  // the TPM's at the commit that wrote this state
  std::optional<Bytes> srk;
  uint32_t next_index = 0;
  std::optional<std::string> active;
  std::vector<ProfileEntry> profiles;  // ascending index
  std::optional<AttestationEntry> attestation;
  uint64_t last_package_counter = 0;
  std::vector<InstalledPackage> installed;  // oldest first, at most kMaxInstalledPackages
  std::vector<DeletionRecord> deletions;    // oldest first, at most kMaxDeletionRecords
};

// store.json decoded; its MAC is not checked yet.
struct Document {
  State state;
  std::string canonical;    // the state's canonical JSON text, what the MAC covers
  std::optional<Bytes> mac; // nullopt when missing or not 32 bytes of base64url
};

// "p<index>" → index; nullopt unless exactly "p" + decimal uint32 without leading zeros.
std::optional<uint32_t> parse_profile_id(std::string_view id);
std::string profile_id(uint32_t index);

bool all_digits(std::string_view s);
bool valid_iccid(std::string_view s);  // ITU-T E.118: 18–20 digits
bool valid_imsi(std::string_view s);   // TS 23.003 §2.2: at most 15 digits; 6 = MCC + MNC + 1
bool valid_operator_id(std::string_view s);
bool valid_algorithm(std::string_view s);
bool valid_object_name(std::string_view s);  // 64 lower-case hex digits
bool valid_ek_type(std::string_view s);      // "ecc" | "rsa"
bool valid_package_id(std::string_view s);   // [A-Za-z0-9._-]{1,64}
bool valid_deletion_reason(std::string_view s);  // change-of-subscription | command | local
bool same_parameters(const aka::SqnParameters& a, const aka::SqnParameters& b);

// Checks every field of metadata; the error has `code` and starts with `where`.
Status validate_metadata(const ProfileMetadata& meta, Code code, std::string_view where);
// What must hold across the records of a state: profiles in ascending index order, every index
// below next_index, ICCIDs unique, active naming an existing, enabled profile. The first
// violation, described; nullopt when none.
std::optional<std::string> invariant_violation(const State& state);
// Every object the state references, each once.
std::vector<ObjectName> referenced_objects(const State& state);

// The state's canonical JSON text: nlohmann-json's dump() without indent (keys sorted), so
// whitespace and key order in the file never matter and any semantic change does.
std::string canonical_state(const State& state);
// What the MAC covers: kMacLabel ‖ canonical.
Bytes mac_input(std::string_view canonical);

// store.json's text for state, MAC'd by anchor.
[[nodiscard]] Result<std::string> encode_store(const State& state, Anchor& anchor);
// `file` names the file in error messages. Checks, in order: JSON object; "format" present and 3
// or 2 (another → Unsupported naming it); no unknown member; "state" and every field in it (types,
// ranges, formats; unknown or missing → StoreCorrupt naming the field). Cross-record invariants
// and the MAC are left to the caller (after the MAC, a violation cannot be an outside edit).
[[nodiscard]] Result<Document> decode_store(std::string_view text, const std::string& file);
// The MAC over doc.canonical under anchor's key, compared in constant time: StoreTampered when
// missing or different; the anchor's own errors are passed on.
[[nodiscard]] Status verify_mac(const Document& doc, Anchor& anchor, const std::string& file);

}  // namespace mcimd::store::detail
