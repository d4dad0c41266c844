#include "daemon/platform_policy.hpp"

#include <algorithm>
#include <set>
#include <system_error>

#include "common/file.hpp"
#include "common/log.hpp"

namespace mcimd::daemon {

namespace {

namespace fs = std::filesystem;

// PC Client Platform TPM Profile §4.6: PCR 16 (debug) and PCR 23 (application support) are
// resettable by any software with TPM2_PCR_Reset, without a reboot.
constexpr unsigned kResettablePcrs[] = {16, 23};
constexpr std::size_t kMaxPolicyFile = 64 * 1024;
constexpr std::size_t kMaxPolicies = 64;  // a gateway keeps a few firmware generations, not hundreds


tpm::PcrSelection selection_of(const protocol::PcrValues& v) {
  tpm::PcrSelection s{v.bank, {}};
  for (const auto& [index, value] : v.values) s.pcrs.push_back(index);
  return s;
}

}  // namespace

PlatformPolicies::PlatformPolicies(fs::path dir, PolicyRules rules) : dir_(std::move(dir)), rules_(std::move(rules)) {}

Status PlatformPolicies::check_rules(const protocol::SignedPcrPolicy& p) const {
  for (unsigned pcr : rules_.required.pcrs)
    if (p.pcrs.bank != rules_.required.bank || !p.pcrs.values.count(pcr))
      return fail(Code::InvalidArgument, "The PCR policy does not bind " + rules_.required.bank + ":" +
                                             std::to_string(pcr) + ", which tpm.pcrs requires of every policy");
  if (!rules_.allow_resettable_pcrs)
    for (unsigned pcr : kResettablePcrs)
      if (p.pcrs.values.count(pcr))
        return fail(Code::InvalidArgument, "The PCR policy binds PCR " + std::to_string(pcr) +
                                               ", which any process can reset without a reboot; refused unless "
                                               "tpm.allow-resettable-pcrs is true");
  return {};
}

Status PlatformPolicies::load(std::optional<protocol::PolicyAuthority> authority, std::vector<std::string>& skipped) {
  authority_ = std::move(authority);
  policies_.clear();
  active_.reset();
  if (!authority_) return {};
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return {};
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".json" && it->is_regular_file(ec)) files.push_back(it->path());
  if (ec) return fail(Code::IoError, "Failed to list " + dir_.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    if (policies_.size() >= kMaxPolicies) {
      skipped.push_back(file.string() + ": more than " + std::to_string(kMaxPolicies) + " policies");
      continue;
    }
    auto text = read_text_file(file, kMaxPolicyFile);
    auto policy = text ? protocol::signed_pcr_policy_from_json(*text) : tl::unexpected(text.error());
    Status ok = policy ? protocol::verify_pcr_policy(*policy, *authority_) : Status(tl::unexpected(policy.error()));
    if (ok) ok = check_rules(*policy);
    if (!ok) {
      skipped.push_back(file.string() + ": " + ok.error().message);
      continue;
    }
    const auto id = protocol::policy_id(*policy);
    policies_.insert_or_assign(id, Entry{std::move(*policy), std::nullopt});
  }
  return {};
}

Result<Bytes> PlatformPolicies::authority_public() const {
  MCIMD_CHECK(authority_name());
  return authority_->public_area;
}

Result<Bytes> PlatformPolicies::authority_name() const {
  if (!authority_)
    return fail(Code::InvalidState, "No PCR policy authority is configured (tpm.policy-authority): profiles "
                                    "cannot be bound to a platform state");
  return authority_->name;
}

Result<Bytes> PlatformPolicies::auth_policy() const {
  auto name = MCIMD_TRY(authority_name());
  const std::string_view ref = protocol::kPcrPolicyRef;
  return protocol::authorize_policy_digest(name, std::span(reinterpret_cast<const uint8_t*>(ref.data()), ref.size()));
}

Result<Bytes> PlatformPolicies::auth_policy(const std::optional<store::DeletionBinding>& deletion) const {
  if (!deletion) return auth_policy();
  auto name = MCIMD_TRY(authority_name());
  const std::string_view ref = protocol::kPcrPolicyRef;
  return protocol::bound_policy_digest(name, std::span(reinterpret_cast<const uint8_t*>(ref.data()), ref.size()),
                                       protocol::DeletionBinding{deletion->nv_index, deletion->value});
}

Result<std::string> PlatformPolicies::add(std::string_view document) {
  MCIMD_CHECK(authority_name());
  auto policy = MCIMD_TRY(protocol::signed_pcr_policy_from_json(document));
  MCIMD_CHECK(protocol::verify_pcr_policy(policy, *authority_));
  MCIMD_CHECK(check_rules(policy));
  const auto id = protocol::policy_id(policy);
  if (policies_.count(id)) return id;
  if (policies_.size() >= kMaxPolicies)
    return fail(Code::InvalidState, "mcimd keeps at most " + std::to_string(kMaxPolicies) + " PCR policies");
  MCIMD_CHECK(make_private_dir(dir_));
  MCIMD_CHECK(write_file_atomic(dir_ / (id + ".json"), protocol::to_json(policy)));
  policies_.insert_or_assign(id, Entry{std::move(policy), std::nullopt});
  log::debug("Kept PCR policy " + id);
  return id;
}

Result<const tpm::ApprovedPolicy*> PlatformPolicies::select(tpm::Context& tpm) {
  MCIMD_CHECK(authority_name());
  if (policies_.empty())
    return fail(Code::PlatformStateChanged,
                "No signed PCR policy approves this platform: none has been given (mcimctl policy add)");
  // Current values of every PCR any policy names, one read per bank.
  std::map<std::string, std::set<unsigned>> wanted;
  for (const auto& [id, e] : policies_)
    for (const auto& [index, value] : e.policy.pcrs.values) wanted[e.policy.pcrs.bank].insert(index);
  std::map<std::string, std::map<unsigned, Bytes>> now;
  for (const auto& [bank, pcrs] : wanted) {
    auto values = MCIMD_TRY(tpm.pcr_read(tpm::PcrSelection{bank, std::vector<unsigned>(pcrs.begin(), pcrs.end())}));
    for (auto& v : values) now[bank][v.index] = std::move(v.digest);
  }
  const Entry* closest = nullptr;
  std::vector<std::string> closest_differ;
  for (auto& [id, e] : policies_) {
    std::vector<std::string> differ;
    for (const auto& [index, value] : e.policy.pcrs.values)
      if (now[e.policy.pcrs.bank][index] != value) differ.push_back(e.policy.pcrs.bank + ":" + std::to_string(index));
    if (differ.empty()) {
      if (!e.approved) {
        auto ticket = MCIMD_TRY(tpm.verify_signature(
            authority_->public_area, protocol::approval_digest(e.policy.approved_policy, e.policy.policy_ref),
            e.policy.signature));
        tpm::ApprovedPolicy a;
        a.pcrs = selection_of(e.policy.pcrs);
        a.pcr_digest = protocol::pcr_values_digest(e.policy.pcrs);
        a.approved_policy = e.policy.approved_policy;
        a.policy_ref = e.policy.policy_ref;
        a.authority_name = e.policy.authority;
        a.ticket = std::move(ticket);
        e.approved = std::move(a);
      }
      active_ = id;
      return &*e.approved;
    }
    if (!closest || differ.size() < closest_differ.size()) {
      closest = &e;
      closest_differ = std::move(differ);
    }
  }
  std::string names;
  for (const auto& n : closest_differ) names += (names.empty() ? "" : ", ") + n;
  return fail(Code::PlatformStateChanged,
              "No signed PCR policy approves this platform: " + names + " differ" +
                  (closest_differ.size() == 1 ? "s" : "") + " from the values of the closest policy (" +
                  protocol::policy_id(closest->policy) + ")");
}

const tpm::ApprovedPolicy* PlatformPolicies::active() const {
  if (!active_) return nullptr;
  auto it = policies_.find(*active_);
  return it == policies_.end() || !it->second.approved ? nullptr : &*it->second.approved;
}

void PlatformPolicies::forget_tickets() {
  for (auto& [id, e] : policies_) e.approved.reset();
  active_.reset();
}

std::vector<PolicySummary> PlatformPolicies::list() const {
  std::vector<PolicySummary> out;
  for (const auto& [id, e] : policies_)
    out.push_back(PolicySummary{id, tpm::to_string(selection_of(e.policy.pcrs)), active_ == id});
  return out;
}

}  // namespace mcimd::daemon
