// Authentication for the modem stack: UMTS, IMS and GSM AKA with the TPM-held credentials.
// In steady state a UMTS AKA is 13 TPM commands: three times PolicyPCR + PolicyAuthorize + PolicyNV +
// EncryptDecrypt2 (TEMP; OUT2..OUT5; OUT1 for MAC-A and MAC-S) and one NV_Increment for the SQN
// commit. K stays loaded, OPc stays unsealed in locked memory, and the policy session and the
// counter's session are kept, until a policy failure drops them.
#include "aka/usim.hpp"
#include "common/log.hpp"
#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_bridge.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

Result<store::Profile> ServiceCore::usable_profile(Device& d, const std::string& id) {
  auto profile = MCIMD_TRY(d.store()->profile(id));
  if (profile.meta.state != store::ProfileState::Enabled)
    return fail(Code::InvalidState, "Profile " + id + " is disabled");
  auto authority = MCIMD_TRY(d.policies().authority_name());
  if (profile.meta.authority != authority)
    return fail(Code::InvalidState, "Profile " + id + " is bound to another policy authority than the configured one");
  return profile;
}

template <class T>
Result<T> ServiceCore::with_credentials(Device& d, const store::Profile& profile,
                                        const std::function<Result<T>(aka::BlockCipher&, const aka::Block&)>& fn) {
  auto* creds = MCIMD_TRY(d.credentials(profile));
  auto opc = MCIMD_TRY(to_block(creds->opc, "OPc"));
  const tpm::ApprovedPolicy policy = d.profile_policy(profile.meta);
  auto result = [&]() -> Result<T> {
    if (creds->k) {
      TpmAesCipher cipher(*creds->k, policy);
      return fn(cipher, opc);
    }
    // Sealed fallback: K is unsealed under the policy for this use only, never kept.
    auto* ctx = MCIMD_TRY(d.tpm());
    auto k = MCIMD_TRY(ctx->unseal(tpm::KeyBlob{profile.k.public_area, profile.k.private_area}, policy));
    auto cipher = MCIMD_TRY(aka::OpenSslAes::create(k));
    return fn(cipher, opc);
  }();
  wipe(opc.data(), opc.size());
  return result;
}

Result<api::UmtsAuthResult> ServiceCore::do_umts(Device& d, const std::string& id, const Bytes& rand_bytes,
                                                 const Bytes& autn_bytes) {
  auto rand = MCIMD_TRY(to_array<aka::Rand>(rand_bytes, "RAND"));
  auto autn = MCIMD_TRY(to_array<aka::Autn>(autn_bytes, "AUTN"));
  return d.approved([&]() -> Result<api::UmtsAuthResult> {
    auto profile = MCIMD_TRY(usable_profile(d, id));
    auto* st = d.store();
    auto attempt = [&](const store::Profile& credentials, aka::SqnArray& sqns) {
      return with_credentials<aka::UmtsOutcome>(d, credentials, [&](aka::BlockCipher& k, const aka::Block& opc) {
        return aka::usim_authenticate(k, opc, sqns, rand, autn);
      });
    };
    auto sqns = MCIMD_TRY(st->sqn_array(id));
    auto outcome = attempt(profile, sqns);
    // A re-key not yet proven: new credentials the network does not know (MAC failure) while the
    // previous ones pass are rolled back; new ones that pass retire the previous ones for good.
    std::optional<Status> settle;
    if (profile.meta.previous) {
      if (!outcome && outcome.error().code == Code::MacFailure) {
        auto previous = MCIMD_TRY(previous_credentials_of(profile));
        auto old_sqns = MCIMD_TRY(st->sqn_array(id));
        auto old_outcome = attempt(previous, old_sqns);
        if (!old_outcome) return tl::unexpected(outcome.error());
        MCIMD_CHECK(roll_back_rekey(d, profile, old_outcome->index() == 0 ? &old_sqns : nullptr));
        outcome = std::move(old_outcome);
        sqns = std::move(old_sqns);
        settle = Status{};
      } else if (outcome && std::holds_alternative<aka::UmtsSuccess>(*outcome)) {
        settle = retire_previous_credentials(d, profile, sqns);
        if (!*settle) return tl::unexpected(settle->error());
      }
    }
    if (!outcome) return tl::unexpected(outcome.error());
    api::UmtsAuthResult result;
    if (auto* ok = std::get_if<aka::UmtsSuccess>(&*outcome)) {
      // The SQN is persisted before RES leaves the daemon: a crash here can never let the same
      // AUTN be accepted twice with its RES already out (a re-key's settling commit saved it).
      if (!settle) MCIMD_CHECK(st->save_sqn_array(id, sqns));
      result.res = secure(ok->res);
      result.ck = secure(ok->ck);
      result.ik = secure(ok->ik);
      wipe(&*ok, sizeof *ok);
      log::debug("AKA for " + id + " succeeded");
      // A profile taking over from another (change of subscription) has proved itself: the one it
      // replaces goes now. A failure is retried at the next success; this AKA stands.
      if (profile.meta.replaces)
        if (auto retired = retire_replaced(d, id); !retired)
          log::error("Failed to delete profile " + *profile.meta.replaces + ", replaced by " + id + ": " +
                     retired.error().message + "; trying again after the next authentication");
    } else {
      auto& sync = std::get<aka::UmtsSyncFailure>(*outcome);
      result.auts = Bytes(sync.auts.begin(), sync.auts.end());
      log::info("AKA for " + id + ": sequence number out of range, answering with AUTS for resynchronisation");
    }
    return result;
  });
}

void ServiceCore::umts_authenticate(const std::string& id, Bytes rand, Bytes autn,
                                    api::Reply<api::UmtsAuthResult> reply) {
  run_job<api::UmtsAuthResult>(
      [this, id, rand = std::move(rand), autn = std::move(autn)](Device& d) { return do_umts(d, id, rand, autn); },
      std::move(reply));
}

void ServiceCore::ims_authenticate(const std::string& id, Bytes rand, Bytes autn,
                                   api::Reply<api::UmtsAuthResult> reply) {
  // The ISIM runs the same AKA (TS 33.203 §6.1) over the same MCIM credentials.
  umts_authenticate(id, std::move(rand), std::move(autn), std::move(reply));
}

void ServiceCore::gsm_authenticate(const std::string& id, std::vector<Bytes> rands,
                                   api::Reply<std::vector<api::GsmAuthResult>> reply) {
  run_job<std::vector<api::GsmAuthResult>>(
      [this, id, rands = std::move(rands)](Device& d) -> Result<std::vector<api::GsmAuthResult>> {
        std::vector<aka::Rand> parsed;
        for (auto& r : rands) parsed.push_back(MCIMD_TRY(to_array<aka::Rand>(r, "RAND")));
        return d.approved([&]() -> Result<std::vector<api::GsmAuthResult>> {
          auto profile = MCIMD_TRY(usable_profile(d, id));
          return with_credentials<std::vector<api::GsmAuthResult>>(
              d, profile, [&](aka::BlockCipher& k, const aka::Block& opc) -> Result<std::vector<api::GsmAuthResult>> {
                std::vector<api::GsmAuthResult> out;
                for (auto& rand : parsed) {
                  auto triplet = MCIMD_TRY(aka::gsm_authenticate(k, opc, rand));
                  out.push_back(api::GsmAuthResult{secure(triplet.sres), secure(triplet.kc)});
                  wipe(&triplet, sizeof triplet);
                }
                return out;
              });
        });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
