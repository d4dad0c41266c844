// Remote lifecycle commands (TR 33.812 §5.1.3.5.7: the operator manages its MCIM on the device)
// and the modem stack's fallback to the bootstrap profile. An operator command is a JWS its
// operator signed for one profile of its own on this device, with a counter above the profile's
// last and an expiry; the operator's rules bind the subscriber and the administrator, not the
// operator itself.
#include <chrono>
#include <nlohmann/json.hpp>

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

}  // namespace

Result<std::string> ServiceCore::bootstrap_profile(Device& d) {
  for (const auto& m : d.store()->profiles())
    if (m.profile_class == store::ProfileClass::Bootstrap) return m.id;
  return fail(Code::NotFound, "No bootstrap profile is installed to fall back to");
}

void ServiceCore::apply_command(std::string command, api::Reply<std::string> reply) {
  run_job<std::string>(
      [this, command = std::move(command)](Device& d) -> Result<std::string> {
        return d.approved([&]() -> Result<std::string> {
          auto* st = d.store();
          std::string profile_id = "-", operator_id = "-";
          auto refused = [&](Error e) -> Result<std::string> {
            audit_refusal("command", profile_id, operator_id, e);
            return tl::unexpected(std::move(e));
          };
          // 1. Signed by a configured operator, for a profile of its own, still valid.
          const auto operators = operator_trust();
          if (!operators) return refused(operators.error());
          auto verified = attestation::verify_command(command, *operators, now_utc());
          if (!verified) return refused(verified.error());
          const protocol::OperatorCommand& c = verified->body;
          operator_id = verified->signer_operator;
          // 2. For this device, an installed profile of that operator, a counter not seen.
          auto device = device_id(d);
          if (!device) return refused(device.error());
          if (c.device != *device)
            return refused(Error{Code::WrongDevice, "The command is for device " + c.device + ", not this one"});
          std::optional<store::ProfileMetadata> target;
          for (const auto& m : st->profiles())
            if (m.iccid == c.iccid) target = m;
          if (!target) return refused(Error{Code::NotFound, "No profile with ICCID " + c.iccid + " is installed"});
          profile_id = target->id;
          if (target->operator_id != c.operator_id)
            return refused(Error{Code::NotAuthorized, "Profile " + target->id + " belongs to operator " +
                                                          target->operator_id + ", not to operator " + c.operator_id});
          if (c.counter <= target->command_counter)
            return refused(Error{Code::Replayed, "Command counter " + std::to_string(c.counter) +
                                                     " is not above the last one accepted for profile " + target->id +
                                                     ", " + std::to_string(target->command_counter)});

          // 3. The change, with the counter, in one commit (a delete: after its point of no return).
          nlohmann::json result = {{"format", "mcimd-command-result-1"},
                                   {"command_id", c.command_id},
                                   {"command", std::string(protocol::wire_name(c.command))},
                                   {"profile", target->index}};
          const auto active = st->active();
          auto switch_to = [&](const std::string& id, const std::optional<std::string>& off) -> Status {
            auto tx = MCIMD_TRY(st->begin());
            if (off && *off != id) MCIMD_CHECK(tx.set_state(*off, store::ProfileState::Disabled));
            MCIMD_CHECK(tx.set_state(id, store::ProfileState::Enabled));
            MCIMD_CHECK(tx.set_active(id));
            MCIMD_CHECK(tx.set_command_counter(target->id, c.counter));
            return tx.commit();
          };
          Status done;
          switch (c.command) {
            case protocol::CommandKind::Enable:
            case protocol::CommandKind::Restore: {
              // Taking over from another operator's profile in service needs that operator's release.
              if (active && *active != target->id) {
                auto current = MCIMD_TRY(st->profile(*active));
                if (current.meta.profile_class == store::ProfileClass::Operational &&
                    current.meta.operator_id != target->operator_id)
                  return refused(Error{Code::NotAuthorized, "Profile " + *active + " of operator " +
                                                                current.meta.operator_id +
                                                                " is in service; only its operator's release lets "
                                                                "another operator's profile take over"});
              }
              done = switch_to(target->id, active);
              break;
            }
            case protocol::CommandKind::Fallback: {
              auto bootstrap = bootstrap_profile(d);
              if (!bootstrap) return refused(bootstrap.error());
              if (active != target->id)
                return refused(Error{Code::InvalidState, "Profile " + target->id + " is not the active one"});
              done = switch_to(*bootstrap, active);
              break;
            }
            case protocol::CommandKind::Disable: {
              auto tx = MCIMD_TRY(st->begin());
              MCIMD_CHECK(tx.set_state(target->id, store::ProfileState::Disabled));
              if (active == target->id) MCIMD_CHECK(tx.set_active(std::nullopt));
              MCIMD_CHECK(tx.set_command_counter(target->id, c.counter));
              done = tx.commit();
              break;
            }
            case protocol::CommandKind::Delete: {
              // The counter goes with the profile; the deletion record keeps what happened.
              auto record = delete_for_good(d, target->id, "command");
              if (!record) return refused(record.error());
              result["deletion_receipt"] = nlohmann::json::parse(MCIMD_TRY(deletion_receipt(d, *record)));
              break;
            }
          }
          if (!done) return refused(done.error());
          d.drop_credentials();
          const auto now_active = st->active();
          result["active"] = now_active ? nlohmann::json(*now_active) : nlohmann::json(nullptr);
          log::info("Applied operator " + c.operator_id + "'s command " + c.command_id + " (" +
                    std::string(protocol::wire_name(c.command)) + ") to profile " + target->id);
          return result.dump();
        });
      },
      std::move(reply));
}

void ServiceCore::request_fallback(api::Reply<void> reply) {
  run_job<void>(
      [this](Device& d) -> Status {
        return d.approved([&]() -> Status {
          auto* st = d.store();
          const auto active = st->active();
          auto refused = [&](Error e) -> Status {
            audit_refusal("fallback", active.value_or("-"), "-", e);
            return tl::unexpected(std::move(e));
          };
          if (!active) return refused(Error{Code::InvalidState, "No profile is active"});
          auto current = MCIMD_TRY(st->profile(*active));
          if (current.meta.profile_class == store::ProfileClass::Bootstrap)
            return refused(Error{Code::InvalidState, "The bootstrap profile is active already"});
          if (!current.meta.rules.fallback_allowed)
            return refused(Error{Code::NotAuthorized, "The rules of profile " + *active + " (operator " +
                                                          current.meta.operator_id +
                                                          ") do not allow fallback to the bootstrap profile"});
          auto bootstrap = bootstrap_profile(d);
          if (!bootstrap) return refused(bootstrap.error());
          auto tx = MCIMD_TRY(st->begin());
          MCIMD_CHECK(tx.set_state(*active, store::ProfileState::Disabled));
          MCIMD_CHECK(tx.set_state(*bootstrap, store::ProfileState::Enabled));
          MCIMD_CHECK(tx.set_active(*bootstrap));
          MCIMD_CHECK(tx.commit());
          d.drop_credentials();
          log::notice("Fell back from profile " + *active + " to the bootstrap profile " + *bootstrap +
                      " at the modem stack's request; switching back is explicit");
          return {};
        });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
