#include "operator/batch_input.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <map>

#include "common/file.hpp"
#include "operator/registry.hpp"

namespace mcimd::op {
namespace {

constexpr std::array<std::string_view, 4> kColumns{"request", "subscription", "ek_public", "ek_certificate"};
constexpr std::size_t kMaxInputSize = 256u << 20;  // a million records of short paths

Error at(std::string_view name, std::size_t line, const std::string& message) {
  return Error{Code::InvalidArgument, std::string(name) + ":" + std::to_string(line) + ": " + message, {}};
}

bool is_id(std::string_view s) {
  return !s.empty() && s.size() <= kMaxIdSize && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

bool is_one_line(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::filesystem::path resolve(const std::filesystem::path& base_dir, const std::string& path) {
  const std::filesystem::path p(path);
  return p.is_absolute() ? p : base_dir / p;
}

// Fills one record from its fields by column name, checking each; `seen` finds a request twice.
Result<EnrolmentRecord> make_record(const std::map<std::string, std::string>& fields, std::string_view name,
                                    std::size_t line, const std::filesystem::path& base_dir,
                                    std::map<std::string, std::size_t>& seen) {
  EnrolmentRecord r;
  r.line = line;
  auto field = [&](std::string_view column) -> std::optional<std::string> {
    auto it = fields.find(std::string(column));
    if (it == fields.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  auto request = field("request");
  if (!request) return tl::make_unexpected(at(name, line, "no request: every record names its package request file"));
  if (request->size() > kMaxBatchKeySize || !is_one_line(*request))
    return tl::make_unexpected(at(name, line, "request: a path of one line, at most 512 bytes"));
  if (auto [it, added] = seen.emplace(*request, line); !added)
    return tl::make_unexpected(
        at(name, line, "request " + *request + " is listed twice (first at line " + std::to_string(it->second) + ")"));
  r.request = *request;
  r.request_path = resolve(base_dir, *request);
  r.subscription = field("subscription");
  if (r.subscription && !is_id(*r.subscription))
    return tl::make_unexpected(at(name, line, "subscription: not a subscription id ([A-Za-z0-9._-]{1,64})"));
  if (auto ek = field("ek_public")) r.ek_public = resolve(base_dir, *ek);
  if (auto cert = field("ek_certificate")) r.ek_certificate = resolve(base_dir, *cert);
  return r;
}

std::string trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r";
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(kSpace) - first + 1));
}

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

Status check_column(std::string_view column, std::string_view name, std::size_t line) {
  if (std::find(kColumns.begin(), kColumns.end(), column) == kColumns.end())
    return tl::make_unexpected(at(name, line,
                                  "unknown column '" + std::string(column) +
                                      "' (known: request, subscription, ek_public, ek_certificate)"));
  return {};
}

}  // namespace

Result<std::vector<EnrolmentRecord>> parse_enrolment_csv(std::string_view text, std::string_view name,
                                                         const std::filesystem::path& base_dir) {
  std::vector<std::string> header;
  std::size_t header_line = 0;
  std::vector<EnrolmentRecord> out;
  std::map<std::string, std::size_t> seen;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const auto end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (trim(line).empty()) continue;
    auto fields = split_fields(line);
    if (header.empty()) {
      header_line = line_no;
      for (const auto& column : fields) {
        MCIMD_CHECK(check_column(column, name, line_no));
        if (std::count(fields.begin(), fields.end(), column) > 1)
          return tl::make_unexpected(at(name, line_no, "column '" + column + "' is named twice"));
      }
      if (std::find(fields.begin(), fields.end(), "request") == fields.end())
        return tl::make_unexpected(at(name, line_no, "the header names no 'request' column"));
      header = std::move(fields);
      continue;
    }
    if (fields.size() != header.size())
      return tl::make_unexpected(at(name, line_no, std::to_string(fields.size()) + " fields, the header (line " +
                                                       std::to_string(header_line) + ") names " +
                                                       std::to_string(header.size())));
    std::map<std::string, std::string> record;
    for (std::size_t i = 0; i < header.size(); ++i) record[header[i]] = fields[i];
    out.push_back(MCIMD_TRY(make_record(record, name, line_no, base_dir, seen)));
  }
  if (header.empty()) return tl::make_unexpected(at(name, 1, "empty: expected a header line naming the columns"));
  if (out.empty()) return tl::make_unexpected(at(name, header_line, "no records after the header"));
  return out;
}

Result<std::vector<EnrolmentRecord>> parse_enrolment_yaml(std::string_view text, std::string_view name,
                                                          const std::filesystem::path& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return tl::make_unexpected(at(name, static_cast<std::size_t>(std::max(e.mark.line, 0)) + 1, e.msg));
  }
  auto line_of = [](const YAML::Node& n) { return static_cast<std::size_t>(std::max(n.Mark().line, 0)) + 1; };
  if (!root.IsSequence()) return tl::make_unexpected(at(name, line_of(root), "expected a list of records"));
  std::vector<EnrolmentRecord> out;
  std::map<std::string, std::size_t> seen;
  for (const auto& item : root) {
    const std::size_t line = line_of(item);
    if (!item.IsMap())
      return tl::make_unexpected(at(name, line, "a record is a map of request, subscription, ek_public, ek_certificate"));
    std::map<std::string, std::string> fields;
    for (const auto& kv : item) {
      const std::string key = kv.first.Scalar();
      MCIMD_CHECK(check_column(key, name, line_of(kv.first)));
      if (!kv.second.IsScalar())
        return tl::make_unexpected(at(name, line_of(kv.second), key + ": expected a string"));
      fields[key] = kv.second.Scalar();
    }
    out.push_back(MCIMD_TRY(make_record(fields, name, line, base_dir, seen)));
  }
  if (out.empty()) return tl::make_unexpected(at(name, line_of(root), "no records"));
  return out;
}

Result<std::vector<EnrolmentRecord>> load_enrolment_records(const std::filesystem::path& file) {
  const std::string ext = file.extension().string();
  if (ext != ".csv" && ext != ".yaml" && ext != ".yml")
    return fail(Code::InvalidArgument, file.string() + ": expected a .csv, .yaml or .yml file");
  auto text = MCIMD_TRY(read_text_file(file, kMaxInputSize));
  const auto base = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  if (ext == ".csv") return parse_enrolment_csv(text, file.string(), base);
  return parse_enrolment_yaml(text, file.string(), base);
}

}  // namespace mcimd::op
