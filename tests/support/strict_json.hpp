#pragma once
// Helpers for tests of strict JSON documents (protocol/): a valid document spoiled one way at a
// time must be refused with InvalidArgument naming the field, and every message must round-trip
// through its JSON form exactly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"
#include "protocol/evidence.hpp"

namespace mcimd::test::strict_json {

using json = nlohmann::json;
using protocol::kMaxTpmStructureSize;

// One way to spoil a valid document, and the words the refusal must contain.
struct Spoiler {
  std::string what;
  std::function<void(json&)> edit;
  std::string needle;
};

template <class Parse>
void expect_each_refused(const std::string& valid, Parse parse, const std::vector<Spoiler>& spoilers) {
  ASSERT_TRUE(parse(valid)) << "the unspoiled document must parse: " << valid;
  for (const auto& s : spoilers) {
    SCOPED_TRACE(s.what);
    json j = json::parse(valid);
    s.edit(j);
    auto r = parse(j.dump());
    ASSERT_FALSE(r) << "accepted: " << j.dump();
    EXPECT_EQ(r.error().code, Code::InvalidArgument);
    EXPECT_NE(r.error().message.find(s.needle), std::string::npos) << r.error().message;
  }
}

// to_json then the parser gives the message back, and writing it again gives the same text.
template <class T, class Parse>
void expect_round_trip(const T& m, Parse parse) {
  const std::string text = to_json(m);
  auto parsed = parse(text);
  ASSERT_TRUE(parsed) << parsed.error().describe() << "\n" << text;
  EXPECT_EQ(*parsed, m) << text;
  EXPECT_EQ(to_json(*parsed), text);
}

inline std::string b64(const Bytes& b) { return base64url_encode(b); }

inline Bytes truncated(Bytes b) {
  b.pop_back();
  return b;
}

inline Bytes with_trailing_byte(Bytes b) {
  b.push_back(0);
  return b;
}

// Spoilers every binary TPM field shares: not base64url, larger than any TPM structure, cut
// short, and followed by a stray byte.
inline void add_tpm_spoilers(std::vector<Spoiler>& out, const json::json_pointer& at, const std::string& name,
                             const Bytes& valid) {
  out.push_back({name + " not base64url", [at](json& j) { j[at] = "AA$A"; }, name});
  out.push_back({name + " oversized",
                 [at](json& j) { j[at] = base64url_encode(Bytes(kMaxTpmStructureSize + 1, 0)); },
                 name + " is larger than 4096 bytes"});
  out.push_back({name + " truncated", [at, valid](json& j) { j[at] = b64(truncated(valid)); }, "Malformed " + name});
  out.push_back({name + " with a trailing byte", [at, valid](json& j) { j[at] = b64(with_trailing_byte(valid)); },
                 "Malformed " + name});
  out.push_back({name + " a number", [at](json& j) { j[at] = 7; }, name + " must be a base64url string"});
}

}  // namespace mcimd::test::strict_json
