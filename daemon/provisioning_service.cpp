// Installing profiles: the factory install today, remote provisioning later.
#include "aka/milenage.hpp"
#include "common/log.hpp"
#include "daemon/tpm_bridge.hpp"

#include "daemon/service_core.hpp"
#include "daemon/service_helpers.hpp"
#include "daemon/tpm_job.hpp"

namespace mcimd::daemon {

using namespace detail;

void ServiceCore::install_profile(SecureString yaml, api::Reply<api::ProfileInfo> reply) {
  auto text = std::make_shared<SecureString>(std::move(yaml));
  run_job<api::ProfileInfo>(
      [this, text](Device& d) -> Result<api::ProfileInfo> {
        auto factory = MCIMD_TRY(store::parse_factory_profile(std::string_view(text->data(), text->size())));
        return d.approved([&]() -> Result<api::ProfileInfo> {
          auto* st = d.store();
          auto* tpm = MCIMD_TRY(d.tpm());
          for (auto& m : st->profiles())
            if (m.iccid == factory.iccid)
              return fail(Code::AlreadyExists, "A profile with ICCID " + factory.iccid + " is installed already");
          // Bound to the authority, not to PCR values: whatever platform state it signs a policy
          // for can use the profile (protocol/pcr_policy.hpp); and to its own deletion counter, so
          // that once deleted no copy of it is ever usable again.
          store::Profile profile;
          profile.meta = st->new_metadata();
          profile.meta.deletion = MCIMD_TRY(deletion_binding_for(d, profile.meta.index));
          tpm::SealOptions seal{MCIMD_TRY(d.policies().auth_policy(profile.meta.deletion)), /*no_da=*/true};
          const bool sealed_k = config_.tpm.key_protection == "sealed";
          // K goes straight into the TPM: as an AES key object it never comes back out.
          auto k_blob = MCIMD_TRY(sealed_k ? tpm->seal(factory.k, seal) : tpm->create_aes_key(factory.k, seal));
          SecureBytes opc;
          if (factory.opc) {
            opc = *factory.opc;
          } else {
            // OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1), with the TPM-held K where it is an AES object.
            auto op = MCIMD_TRY(to_block(*factory.op, "OP"));
            auto block = MCIMD_TRY([&]() -> Result<aka::Block> {
              if (sealed_k) {
                auto cipher = MCIMD_TRY(aka::OpenSslAes::create(factory.k));
                return aka::compute_opc(cipher, op);
              }
              auto key = MCIMD_TRY(tpm->load_aes_key(k_blob));
              const auto policy = d.profile_policy(profile.meta);
              TpmAesCipher cipher(key, policy);
              return aka::compute_opc(cipher, op);
            }());
            opc.assign(block.begin(), block.end());
            wipe(block.data(), block.size());
            wipe(op.data(), op.size());
          }
          auto opc_blob = MCIMD_TRY(tpm->seal(opc, seal));
          auto sqns = MCIMD_TRY(aka::SqnArray::create(factory.sqn));
          sqns.seed(factory.initial_sqn);
          profile.meta.iccid = factory.iccid;
          profile.meta.imsi = factory.imsi;
          profile.meta.operator_id = factory.operator_id;
          profile.meta.profile_class = factory.profile_class;
          profile.meta.amf = factory.amf;
          profile.meta.sqn = factory.sqn;
          profile.meta.authority = MCIMD_TRY(d.policies().authority_name());
          profile.meta.key_protection = sealed_k ? store::KeyProtection::Sealed : store::KeyProtection::TpmAes;
          profile.meta.state = st->active() ? store::ProfileState::Disabled : store::ProfileState::Enabled;
          profile.k = store::Blob{k_blob.public_area, k_blob.private_area};
          profile.opc = store::Blob{opc_blob.public_area, opc_blob.private_area};
          // The profile and, for the first one, `active`: one commit.
          auto tx = MCIMD_TRY(st->begin());
          MCIMD_CHECK(tx.add_profile(profile, sqns));
          if (!st->active()) MCIMD_CHECK(tx.set_active(profile.meta.id));
          MCIMD_CHECK(tx.commit());
          log::info("Installed profile " + profile.meta.id + " (ICCID " + profile.meta.iccid + ")");
          return to_info(profile.meta);
        });
      },
      std::move(reply));
}

}  // namespace mcimd::daemon
