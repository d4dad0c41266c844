#pragma once
// The Linux IMA measurement list (security/integrity/ima) as evidence: the ASCII list
// (ascii_runtime_measurements) parsed from hostile input, each entry's template hash recomputed
// from its fields, the list replayed into PCR 10, and the boot_aggregate entry that ties it to
// the firmware's PCRs.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/eventlog.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::attestation {

// PCR the kernel extends by default (CONFIG_IMA_MEASURE_PCR_IDX).
inline constexpr unsigned kImaPcr = 10;

// One line of the list: "<pcr> <template-hash> <template-name> <fields…>", the fields as
// ima_ascii_measurements_show prints them (each after one space):
//   ima      <sha1 hex> <filename>
//   ima-ng   <alg>:<hex> <filename>
//   ima-sig  <alg>:<hex> <filename> <signature hex, or nothing>
//   ima-buf  <alg>:<hex> <name> <buffer hex, or nothing>
struct ImaEntry {
  unsigned pcr = kImaPcr;
  Bytes template_hash;        // SHA-1 of the template data, as the list prints it
  std::string template_name;  // "ima", "ima-ng", "ima-sig", "ima-buf" (others parse, but cannot be verified)
  std::string filedata_alg;   // "sha256", … ("sha1" for the "ima" template)
  Bytes filedata_hash;
  std::string filename;       // for ima-sig/ima-buf: without the last field
  Bytes extra;                // ima-sig: the signature field; ima-buf: the buffer; empty when absent
  bool violation() const;     // all-zero template hash: a measurement violation
};

// Parses the list; lines must follow the format above (empty lines ignored). Errors are
// InvalidArgument "bad_ima_line: IMA log line N: …".
[[nodiscard]] Result<std::vector<ImaEntry>> parse_ima_log(std::string_view text, const EventLogLimits& limits = {});

// The template data the kernel hashes for an entry (ima_crypto.c ima_calc_field_array_hash):
//   ima      the SHA-1 file digest (20 bytes) ‖ the name with its NUL, zero-padded to 256 bytes
//            (IMA_EVENT_NAME_LEN_MAX + 1), no length prefixes;
//   ima-ng   le32 ‖ "<alg>:" NUL digest (d-ng), le32 ‖ name NUL (n-ng);
//   ima-sig, ima-buf   ima-ng's fields, then le32 ‖ the signature or buffer (sig, buf).
// nullopt for other templates, and for an "ima" entry whose digest is not 20 bytes or whose
// name is longer than 255 bytes (the kernel would not have recorded it so).
std::optional<Bytes> ima_template_data(const ImaEntry& entry);
// The template data hashed with hash_alg: the SHA-1 one is the list's template hash; kernels 5.8+
// extend each other PCR bank with the bank's own hash of it.
std::optional<Bytes> ima_template_hash(const ImaEntry& entry, uint16_t hash_alg);

// How a kernel extends a PCR 10 bank with an entry (ima_queue.c ima_pcr_extend):
enum class ImaBankRule {
  TemplateHashSha1,       // the sha1 bank: the SHA-1 template hash
  PerBankTemplateDigest,  // kernels 5.8+: the bank's own hash of the template data
  PaddedSha1,             // kernels before 5.8: the SHA-1 template hash, zero-padded to the bank size
};
// A violation is extended as all ones: the whole bank size per bank (5.8+), 20 bytes then zeros
// when padded.

// The number k ≥ 1 of leading entries (PCR 10 or not) after which replaying the PCR 10 entries
// into `bank` by `rule`, from zeros, gives `quoted` — the part of the list the quote covers;
// entries appended after the quote follow it. nullopt when no prefix does, or when an entry needed
// for the per-bank rule has a template this verifier cannot hash.
std::optional<std::size_t> ima_quoted_prefix(const std::vector<ImaEntry>& entries, uint16_t bank, ImaBankRule rule,
                                             const Bytes& quoted);

// The boot_aggregate the kernel computes over the quoted PCRs (ima_crypto.c
// ima_calc_boot_aggregate): H_alg(PCR 0 ‖ … ‖ PCR 7) in the bank of alg; for any alg but sha1 also
// PCRs 8 and 9 (kernels 5.8+). InvalidArgument naming the PCRs the quote lacks, Unsupported for an
// unknown alg.
[[nodiscard]] Result<Bytes> ima_boot_aggregate(std::string_view alg, const PcrValues& quoted);

}  // namespace mcimd::attestation
