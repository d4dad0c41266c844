// Authentication for the modem stack: UMTS, IMS and GSM AKA with the TPM-held credentials.
#include "aka/usim.hpp"
#include "common/log.hpp"

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

Result<store::Profile> ServiceCore::usable_profile(store::Store& st, const std::string& id) {
  auto profile = MCIMD_TRY(st.profile(id));
  if (profile.meta.state != store::ProfileState::Enabled)
    return fail(Code::InvalidState, "Profile " + id + " is disabled");
  return profile;
}

template <class T>
Result<T> ServiceCore::with_credentials(tpm::Context& tpm, const store::Profile& profile,
                                        const std::function<Result<T>(aka::BlockCipher&, const aka::Block&)>& fn) {
  auto pcrs = MCIMD_TRY(tpm::parse_pcr_selection(profile.meta.pcr_policy));
  auto opc_secret = MCIMD_TRY(tpm.unseal(tpm::KeyBlob{profile.opc.public_area, profile.opc.private_area}, pcrs));
  auto opc = MCIMD_TRY(to_block(opc_secret, "OPc"));
  tpm::KeyBlob k_blob{profile.k.public_area, profile.k.private_area};
  auto result = [&]() -> Result<T> {
    if (profile.meta.key_protection == store::KeyProtection::Sealed) {
      auto k = MCIMD_TRY(tpm.unseal(k_blob, pcrs));
      auto cipher = MCIMD_TRY(aka::OpenSslAes::create(k));
      return fn(cipher, opc);
    }
    auto key = MCIMD_TRY(tpm.load_aes_key(k_blob, pcrs));
    TpmAesCipher cipher(key);
    return fn(cipher, opc);
  }();
  wipe(opc.data(), opc.size());
  if (result) device_.platform_state = "trusted";
  return result;
}

Result<api::UmtsAuthResult> ServiceCore::do_umts(tpm::Context& tpm, store::Store& st, const std::string& id,
                                                 const Bytes& rand_bytes, const Bytes& autn_bytes) {
  auto rand = MCIMD_TRY(to_array<aka::Rand>(rand_bytes, "RAND"));
  auto autn = MCIMD_TRY(to_array<aka::Autn>(autn_bytes, "AUTN"));
  auto profile = MCIMD_TRY(usable_profile(st, id));
  auto sqns = MCIMD_TRY(st.sqn_array(id));
  auto outcome = MCIMD_TRY(with_credentials<aka::UmtsOutcome>(
      tpm, profile, [&](aka::BlockCipher& k, const aka::Block& opc) {
        return aka::usim_authenticate(k, opc, sqns, rand, autn);
      }));
  api::UmtsAuthResult result;
  if (auto* ok = std::get_if<aka::UmtsSuccess>(&outcome)) {
    // The SQN is persisted before RES leaves the daemon: a crash here can never let the same
    // AUTN be accepted twice with its RES already out.
    MCIMD_CHECK(st.save_sqn_array(id, sqns));
    result.res = secure(ok->res);
    result.ck = secure(ok->ck);
    result.ik = secure(ok->ik);
    wipe(&*ok, sizeof *ok);
    log::debug("AKA for " + id + " succeeded");
  } else {
    auto& sync = std::get<aka::UmtsSyncFailure>(outcome);
    result.auts = Bytes(sync.auts.begin(), sync.auts.end());
    log::info("AKA for " + id + ": sequence number out of range, answering with AUTS for resynchronisation");
  }
  return result;
}

void ServiceCore::umts_authenticate(const std::string& id, Bytes rand, Bytes autn,
                                    api::Reply<api::UmtsAuthResult> reply) {
  run_job<api::UmtsAuthResult>(
      [this, id, rand = std::move(rand), autn = std::move(autn)](tpm::Context& tpm, store::Store& st) {
        return do_umts(tpm, st, id, rand, autn);
      },
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
      [this, id, rands = std::move(rands)](tpm::Context& tpm,
                                           store::Store& st) -> Result<std::vector<api::GsmAuthResult>> {
        std::vector<aka::Rand> parsed;
        for (auto& r : rands) parsed.push_back(MCIMD_TRY(to_array<aka::Rand>(r, "RAND")));
        auto profile = MCIMD_TRY(usable_profile(st, id));
        return with_credentials<std::vector<api::GsmAuthResult>>(
            tpm, profile, [&](aka::BlockCipher& k, const aka::Block& opc) -> Result<std::vector<api::GsmAuthResult>> {
              std::vector<api::GsmAuthResult> out;
              for (auto& rand : parsed) {
                auto triplet = MCIMD_TRY(aka::gsm_authenticate(k, opc, rand));
                out.push_back(api::GsmAuthResult{secure(triplet.sres), secure(triplet.kc)});
                wipe(&triplet, sizeof triplet);
              }
              return out;
            });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
