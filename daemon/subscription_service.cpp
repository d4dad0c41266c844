// Change of subscription (TR 33.812 §5.1.3.5.5): a profile moves to another operator only with a
// release its current operator (or, where its package registered one, its subscriber) signed,
// naming this device, the profile and the new operator. The new operator's package installs as
// the active profile; the released one stays, disabled, until the new one has proved itself, and
// is then deleted for good with a receipt the old operator can verify.
#include <chrono>

#include "attestation/lifecycle_check.hpp"
#include "common/log.hpp"
#include "protocol/lifecycle.hpp"

#include "daemon/audit.hpp"
#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

namespace {

// Which key must have signed: the release's own claim, read before any signature is checked
// only to pick the check. Whatever it claims, the check that follows decides.
Result<protocol::ReleaseAuthorisation> unverified_release(std::string_view jws) {
  const auto first = jws.find('.');
  const auto second = first == std::string_view::npos ? first : jws.find('.', first + 1);
  if (second == std::string_view::npos) return fail(Code::InvalidArgument, "The release is not a JWS compact text");
  auto payload = MCIMD_TRY(base64url_decode(jws.substr(first + 1, second - first - 1), "the release's payload"));
  return protocol::release_authorisation_from_json(
      std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
}

protocol::DeletionReason reason_of(const std::string& r) {
  return r == "change-of-subscription" ? protocol::DeletionReason::ChangeOfSubscription
         : r == "command"              ? protocol::DeletionReason::Command
                                       : protocol::DeletionReason::Local;
}

}  // namespace

void ServiceCore::change_subscription(std::string release, std::string package, api::Reply<api::PackageInstall> reply) {
  run_job<api::PackageInstall>(
      [this, release = std::move(release), package = std::move(package)](Device& d) -> Result<api::PackageInstall> {
        return d.approved([&]() -> Result<api::PackageInstall> {
          auto* st = d.store();
          if (auto again = installed_already(d, package)) return std::move(*again);
          // What the refusal's audit record names, learnt as the checks go.
          std::string profile_id, operator_id;
          auto refused = [&](Error e) -> Result<api::PackageInstall> {
            audit_refusal("change-of-subscription", profile_id, operator_id, e);
            return tl::unexpected(std::move(e));
          };
          // Until the release says which, the profile a change would replace is the active one.
          profile_id = st->active().value_or("");
          auto claimed = unverified_release(release);
          if (claimed) {
            operator_id = claimed->from_operator;
            profile_id.clear();
            for (const auto& m : st->profiles())
              if (m.iccid == claimed->iccid) profile_id = m.id;
          }

          // 1. The release: signed by the profile's operator (its chain), or by its subscriber.
          const auto operators = operator_trust();
          if (!operators) return refused(operators.error());
          Result<attestation::VerifiedRelease> verified = tl::unexpected(Error{});
          // A text that does not even parse is checked as an operator's: its signature is then
          // what fails, by name.
          if (claimed && claimed->signer == protocol::ReleaseSigner::Subscriber) {
            std::optional<Bytes> key;
            if (!profile_id.empty()) key = MCIMD_TRY(st->profile(profile_id)).meta.subscriber_key;
            if (!key)
              return refused(Error{Code::NotAuthorized, "The release is signed by the subscriber, and profile " +
                                                            (profile_id.empty() ? claimed->iccid : profile_id) +
                                                            " registered no subscriber key: only its operator can "
                                                            "release it"});
            verified = attestation::verify_subscriber_release(release, *key, now_utc());
          } else {
            verified = attestation::verify_release(release, *operators, now_utc());
          }
          if (!verified) return refused(verified.error());
          const protocol::ReleaseAuthorisation& r = verified->body;
          if (!verified->signer_operator.empty()) operator_id = verified->signer_operator;

          // 2. For this device, a profile installed here, of the operator that released it.
          auto device = device_id(d);
          if (!device) return refused(device.error());
          if (r.device != *device)
            return refused(Error{Code::WrongDevice, "The release is for device " + r.device + ", not this one"});
          if (profile_id.empty())
            return refused(Error{Code::NotFound, "No profile with ICCID " + r.iccid + " is installed"});
          auto old = st->profile(profile_id);
          if (!old) return refused(old.error());
          if (old->meta.operator_id != r.from_operator)
            return refused(Error{Code::NotAuthorized, "The release is from operator " + r.from_operator + ", but profile " +
                                                          profile_id + " belongs to operator " +
                                                          old->meta.operator_id + ": only it can release the profile"});
          if (r.counter <= old->meta.command_counter)
            return refused(Error{Code::Replayed, "Release counter " + std::to_string(r.counter) +
                                                     " is not above the last one accepted for profile " + profile_id +
                                                     ", " + std::to_string(old->meta.command_counter)});
          // 3. The operator's rules: a subsidised profile stays with its operator until the lock ends.
          if (const auto lock = subsidy_lock(old->meta))
            return refused(Error{Code::NotAuthorized, "Profile " + profile_id + " is locked to operator " +
                                                          old->meta.operator_id + " until " +
                                                          protocol::format_timestamp(*lock) +
                                                          " (subsidy lock): no change of subscription before"});
          const auto installed_profiles = st->profiles();
          if (std::any_of(installed_profiles.begin(), installed_profiles.end(),
                          [](const store::ProfileMetadata& m) { return m.replaces.has_value(); }))
            return refused(Error{Code::InvalidState, "A change of subscription is in progress: the new profile must "
                                                     "prove itself (or be confirmed) first"});

          // The profile in service, when it is not the released one, gives way only as its own
          // operator's rules allow: the same operator as the released profile, not locked.
          if (const auto active = st->active(); active && *active != profile_id) {
            auto current = MCIMD_TRY(st->profile(*active));
            if (current.meta.profile_class == store::ProfileClass::Operational &&
                (current.meta.operator_id != r.from_operator || subsidy_lock(current.meta)))
              return refused(Error{Code::NotAuthorized, "Profile " + *active + " of operator " +
                                                            current.meta.operator_id +
                                                            " is in service and its rules do not let it give way "
                                                            "(another operator's, or under a subsidy lock)"});
          }
          // 4. The new operator's package, made for this device and request; from the operator the
          // release names, nobody else.
          auto checked = check_package(d, package);
          if (!checked) return refused(checked.error());
          if (checked->profile.meta.operator_id != r.to_operator)
            return refused(Error{Code::NotAuthorized, "The package is from operator " +
                                                          checked->profile.meta.operator_id + ", but the release moves "
                                                          "the profile to operator " + r.to_operator});

          // 5. One commit: the new profile active, the released one disabled and replaced (the
          // release's counter recorded against replay), the package recorded.
          store::Profile& profile = checked->profile;
          profile.meta.state = store::ProfileState::Enabled;
          auto tx = MCIMD_TRY(st->begin());
          MCIMD_CHECK(tx.add_profile(profile, *checked->sqns));
          MCIMD_CHECK(tx.set_state(profile_id, store::ProfileState::Disabled));
          if (const auto active = st->active(); active && *active != profile_id)
            MCIMD_CHECK(tx.set_state(*active, store::ProfileState::Disabled));
          MCIMD_CHECK(tx.set_active(profile.meta.id));
          MCIMD_CHECK(tx.set_replaces(profile.meta.id, profile_id));
          MCIMD_CHECK(tx.set_command_counter(profile_id, r.counter));
          MCIMD_CHECK(tx.record_package(checked->record));
          MCIMD_CHECK(tx.commit());
          forget_nonce(checked->header.device_nonce);
          d.drop_credentials();
          log::info("Changed subscription: profile " + profile.meta.id + " of operator " + profile.meta.operator_id +
                    " replaces profile " + profile_id + " of operator " + r.from_operator + " (release " + r.release_id +
                    "); " + profile_id + " is deleted once " + profile.meta.id + " has authenticated");
          auto installed = MCIMD_TRY(st->profile(profile.meta.id));
          auto receipt = MCIMD_TRY(install_receipt(d, checked->record));
          return api::PackageInstall{to_info(installed.meta), std::move(receipt)};
        });
      },
      std::move(reply));
}

Result<std::optional<store::DeletionRecord>> ServiceCore::retire_replaced(Device& d, const std::string& id) {
  auto profile = MCIMD_TRY(d.store()->profile(id));
  if (!profile.meta.replaces) return std::optional<store::DeletionRecord>();
  const std::string old = *profile.meta.replaces;
  log::info("Profile " + id + " has proved itself: deleting the profile it replaces, " + old);
  return std::optional<store::DeletionRecord>(MCIMD_TRY(delete_for_good(d, old, "change-of-subscription")));
}

void ServiceCore::confirm_profile(const std::string& id, api::Reply<std::string> reply) {
  run_job<std::string>(
      [this, id](Device& d) -> Result<std::string> {
        return d.approved([&]() -> Result<std::string> {
          auto record = MCIMD_TRY(retire_replaced(d, id));
          if (!record) return fail(Code::InvalidState, "Profile " + id + " replaces no profile");
          return deletion_receipt(d, *record);
        });
      },
      std::move(reply));
}

Result<std::string> ServiceCore::deletion_receipt(Device& d, const store::DeletionRecord& record) {
  protocol::DeletionBody body;
  body.device = MCIMD_TRY(device_id(d));
  body.iccid = record.iccid;
  body.operator_id = record.operator_id;
  body.profile = record.profile;
  body.reason = reason_of(record.reason);
  body.nv_index = record.nv_index;
  body.nv_value = record.nv_value;
  protocol::DeletionReceipt receipt;
  receipt.body = protocol::to_json(body);
  auto quote = MCIMD_TRY(quote_in_domain(d, protocol::QuoteDomain::DeletionReceipt, receipt.body));
  receipt.quote_message = std::move(quote.message);
  receipt.quote_signature = std::move(quote.signature);
  return protocol::to_json(receipt);
}

void ServiceCore::deletion_receipts(api::Reply<std::vector<std::string>> reply) {
  run_job<std::vector<std::string>>(
      [this](Device& d) -> Result<std::vector<std::string>> {
        return d.approved([&]() -> Result<std::vector<std::string>> {
          std::vector<std::string> out;
          for (const auto& record : d.store()->deletions()) out.push_back(MCIMD_TRY(deletion_receipt(d, record)));
          return out;
        });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
