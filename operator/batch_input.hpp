#pragma once
// The enrolment records of a batch (mcim-operator batch): one device's package request each, as
// the factory line collected it with `mcimctl package request`, optionally with the device's EK
// and a subscription to link. Two forms, one set of columns:
//   CSV   a header line naming the columns, then one record a line: `request` (required), and
//         optionally `subscription`, `ek_public`, `ek_certificate`. No quoting: paths and ids
//         hold no commas. Empty lines are skipped.
//   YAML  a list of maps with the same keys.
// `request`, `ek_public` (TPM2B_PUBLIC as tpm2_readpublic -o writes it) and `ek_certificate`
// (DER) are paths relative to the input file's directory (or absolute). Only the input's shape
// is checked here; the files are read when the record is worked on, so one bad file fails one
// device, not the batch.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace mcimd::op {

struct EnrolmentRecord {
  std::size_t line = 0;          // where the record starts in the input (1-based)
  std::string request;           // the path as written: the record's key in the batch job
  std::filesystem::path request_path;  // resolved against the input's directory
  std::optional<std::string> subscription;
  std::optional<std::filesystem::path> ek_public;
  std::optional<std::filesystem::path> ek_certificate;
};

// Parses a CSV or YAML text; `name` is the file name errors give. Checks, each an
// InvalidArgument "NAME:LINE: …":
//   the CSV header names `request` and only known columns, each once; every line has as many
//   fields as the header; the YAML is a list of maps whose keys are known, with a `request`
//   every record has a non-empty `request` of one line, at most 512 bytes (a batch key)
//   a subscription has the id shape [A-Za-z0-9._-]{1,64}
//   no `request` is listed twice (the line says where it was first)
//   there is at least one record
[[nodiscard]] Result<std::vector<EnrolmentRecord>> parse_enrolment_csv(std::string_view text, std::string_view name,
                                                                       const std::filesystem::path& base_dir);
[[nodiscard]] Result<std::vector<EnrolmentRecord>> parse_enrolment_yaml(std::string_view text, std::string_view name,
                                                                        const std::filesystem::path& base_dir);
// Reads a file and parses it by its extension: .csv, .yaml or .yml (InvalidArgument for any other;
// the reading's errors as read_text_file gives them).
[[nodiscard]] Result<std::vector<EnrolmentRecord>> load_enrolment_records(const std::filesystem::path& file);

}  // namespace mcimd::op
