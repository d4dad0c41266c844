#pragma once
// One verification step and its outcome, as every verifier of this library reports it.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace mcimd::attestation {

struct Check {
  std::string name;    // "quote.signature", "policy.pcr[7]", …
  bool passed = false;
  std::string reason;  // why it failed, or what was verified
  // A check this verifier could not make (no EK CA bundle given, …): it does not refuse the
  // evidence (passed is true) but must show as "not checked", never as verified.
  bool not_checked = false;
};
// "pass", "fail" or "not checked".
std::string_view outcome(const Check& check);

// Appends checks to a list.
class CheckRecorder {
 public:
  explicit CheckRecorder(std::vector<Check>& checks) : checks_(checks) {}
  void pass(std::string name, std::string detail = {}) { checks_.push_back({std::move(name), true, std::move(detail)}); }
  void failed(std::string name, std::string reason) { checks_.push_back({std::move(name), false, std::move(reason)}); }
  void not_checked(std::string name, std::string reason) {
    checks_.push_back({std::move(name), true, "not checked: " + std::move(reason), /*not_checked=*/true});
  }
  // Records a Status as a check; returns whether it passed.
  bool status(std::string name, const Status& s, std::string detail = {}) {
    if (s) pass(std::move(name), std::move(detail));
    else failed(std::move(name), s.error().message);
    return bool(s);
  }

 private:
  std::vector<Check>& checks_;
};

}  // namespace mcimd::attestation
