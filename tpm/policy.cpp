// Signed PCR policies in the TPM: the authority's signature proven once (TPM2_VerifySignature →
// ticket), then PolicyPCR + PolicyAuthorize in one kept salted policy session before each use.
#include <cstring>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

// Part 2 §6.6.3 TPM_RC_VALUE: PolicyPCR's pcrDigest differs from the digest of the PCRs' current
// values (Part 3 §23.7), or PolicyAuthorize's approvedPolicy differs from the session's digest.
bool is_value_error(const Error& e) { return rc_base(e.tss2_rc()) == TPM2_RC_VALUE; }

TPM2B_DIGEST digest_of(std::span<const uint8_t> bytes) {
  TPM2B_DIGEST d{};
  d.size = static_cast<uint16_t>(std::min(bytes.size(), sizeof d.buffer));
  std::memcpy(d.buffer, bytes.data(), d.size);
  return d;
}

}  // namespace

Result<Bytes> Context::verify_signature(std::span<const uint8_t> authority_public, std::span<const uint8_t> digest,
                                        std::span<const uint8_t> signature) {
  auto& impl = *impl_;
  auto pub = MCIMD_TRY((unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(authority_public, "authority public area")));
  auto sig = MCIMD_TRY((unmarshal<TPMT_SIGNATURE, Tss2_MU_TPMT_SIGNATURE_Unmarshal>(signature, "policy signature")));
  if (digest.empty() || digest.size() > sizeof(TPM2B_DIGEST::buffer))
    return fail(Code::InvalidArgument, "The signed digest must be 1 to 64 bytes");
  ESYS_TR key = ESYS_TR_NONE;
  // The owner hierarchy, not the null one: a ticket from a key loaded in TPM_RH_NULL is a null
  // ticket, which TPM2_PolicyAuthorize refuses (Part 3 §20.1).
  MCIMD_CHECK(impl.call("load the policy authority's key", [&] {
    return Esys_LoadExternal(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nullptr, &pub,
                             ESYS_TR_RH_OWNER, &key);
  }));
  Object loaded(*this, key, /*flush_on_destroy=*/true);
  const TPM2B_DIGEST d = digest_of(digest);
  EsysPtr<TPMT_TK_VERIFIED> ticket;
  auto verified = impl.call("verify the policy signature", [&] {
    return Esys_VerifySignature(impl.esys.get(), key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d, &sig,
                                OutPtr(ticket));
  });
  if (!verified) {
    if (rc_base(verified.error().tss2_rc()) == TPM2_RC_SIGNATURE)
      return fail(Code::NotAuthorized, "The TPM refused the policy authority's signature");
    return tl::unexpected(verified.error());
  }
  return marshal<TPMT_TK_VERIFIED, Tss2_MU_TPMT_TK_VERIFIED_Marshal>(*ticket, "the verification ticket");
}

Status Context::Impl::with_policy(const ApprovedPolicy& policy, std::string_view what,
                                  const std::function<TSS2_RC(ESYS_TR)>& use) {
  auto selection = MCIMD_TRY(to_tpml(policy.pcrs));
  const TPM2B_DIGEST pcr_digest = digest_of(policy.pcr_digest);
  const TPM2B_DIGEST approved = digest_of(policy.approved_policy);
  TPM2B_NONCE ref{};
  ref.size = static_cast<uint16_t>(std::min(policy.policy_ref.size(), sizeof ref.buffer));
  std::memcpy(ref.buffer, policy.policy_ref.data(), ref.size);
  TPM2B_NAME key_name{};
  key_name.size = static_cast<uint16_t>(std::min(policy.authority_name.size(), sizeof key_name.name));
  std::memcpy(key_name.name, policy.authority_name.data(), key_name.size);
  auto ticket = MCIMD_TRY((unmarshal<TPMT_TK_VERIFIED, Tss2_MU_TPMT_TK_VERIFIED_Unmarshal>(policy.ticket, "policy ticket")));

  for (int fresh_session = 0;; ++fresh_session) {
    if (!policy_session) {
      policy_session = MCIMD_TRY(start_salted_session(TPM2_SE_POLICY));
      policy_dirty = false;
    }
    const ESYS_TR session = policy_session.handle();
    bool object_stale = false;
    auto done = redo_on_pcr_change([&](bool) -> Status {
      // A policy session is reset only by a successful use; after any failure since the last
      // PolicyPCR it may still hold part of a policy, and the next PolicyPCR would not match.
      if (policy_dirty)
        MCIMD_CHECK(call("restart the policy session", [&] {
          return Esys_PolicyRestart(esys.get(), session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
        }));
      policy_dirty = true;
      auto pcr = call("apply the PCR policy (" + to_string(policy.pcrs) + ")", [&] {
        return Esys_PolicyPCR(esys.get(), session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pcr_digest, &selection);
      });
      if (!pcr && is_value_error(pcr.error()))
        return tl::unexpected(Error{Code::PlatformStateChanged,
                                    "Failed to " + std::string(what) + ": the values of " + to_string(policy.pcrs) +
                                        " differ from the ones the signed policy approves",
                                    pcr.error().tss2_rc()});
      MCIMD_CHECK(pcr);
      auto authorized = call("apply the signed policy (PolicyAuthorize)", [&] {
        return Esys_PolicyAuthorize(esys.get(), session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &approved, &ref,
                                    &key_name, &ticket);
      });
      if (!authorized && is_value_error(authorized.error()))
        return tl::unexpected(Error{Code::PlatformStateChanged,
                                    "Failed to " + std::string(what) + ": the TPM did not accept the signed policy (" +
                                        authorized.error().message + ")",
                                    authorized.error().tss2_rc()});
      MCIMD_CHECK(authorized);
      if (policy.deletion) MCIMD_CHECK(policy_nv(session, *policy.deletion));
      auto used = call(what, [&] { return use(session); });
      // TPM_RC_REFERENCE_H*: the object the command uses is gone, not our session; the caller
      // loads it again (the session is fine and stays).
      if (!used && classify_rc(used.error().tss2_rc()) == RcKind::Stale &&
          rc_base(used.error().tss2_rc()) < TPM2_RC_REFERENCE_S0)
        object_stale = true;
      MCIMD_CHECK(used);
      policy_dirty = false;  // the successful use reset the session's policy digest
      return {};
    });
    const RcKind kind = done ? RcKind::Success : classify_rc(done.error().tss2_rc());
    if (done || fresh_session > 0 || object_stale || (kind != RcKind::Stale && kind != RcKind::BadAuth)) {
      if (!done && classify_rc(done.error().tss2_rc()) == RcKind::PolicyFailed)
        return tl::unexpected(Error{Code::PlatformStateChanged,
                                    "Failed to " + std::string(what) +
                                        ": the object is not bound to the signed policy's authority (" +
                                        done.error().message + ")",
                                    done.error().tss2_rc()});
      return done;
    }
    // Our session was flushed by a TPM reset or by another client, or its nonces fell out of step
    // with the TPM's (an answer lost on the way): start a fresh one and redo the sequence once.
    log::debug("The kept policy session is unusable (" + done.error().message + "); starting a new one");
    // A stale handle may be someone else's by now: forgotten, not flushed; a refused session is
    // still loaded: flushed.
    if (kind == RcKind::Stale) forget(policy_session);
    else policy_session = Object();
  }
}

void Context::Impl::forget(Object& object) noexcept {
  if (!object) return;
  close(object.release());
}

void Context::Impl::free_object_slots() noexcept {
  log::debug("The TPM has no free object slot: giving up the loaded AES keys (loaded again on use)");
  for (auto* slot : aes_keys)
    if (!slot->in_use) slot->key = Object();
}

void Context::Impl::free_session_slots() noexcept {
  // Called only while no kept session is in use (a new one is being started), so all may go.
  log::debug("The TPM has no free session slot: giving up the kept sessions (started again on use)");
  counters.clear();
  policy_session = Object();
  policy_dirty = false;
}

void Context::Impl::drop_kept() noexcept {
  counters.clear();
  policy_session = Object();
  policy_dirty = false;
}

void Context::drop_sessions() { impl_->drop_kept(); }

std::size_t Context::kept_sessions() const {
  return (impl_->policy_session ? 1 : 0) + impl_->counters.size();
}

Result<PublicInfo> describe_public(std::span<const uint8_t> public_area) {
  auto pub = MCIMD_TRY((unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(public_area, "public area")));
  const auto& a = pub.publicArea;
  PublicInfo info;
  if (a.type == TPM2_ALG_KEYEDHASH)
    info.kind = a.parameters.keyedHashDetail.scheme.scheme == TPM2_ALG_HMAC ? PublicInfo::Kind::HmacKey
                                                                              : PublicInfo::Kind::SealedData;
  else if (a.type == TPM2_ALG_SYMCIPHER && a.parameters.symDetail.sym.algorithm == TPM2_ALG_AES)
    info.kind = PublicInfo::Kind::AesKey;
  const TPMA_OBJECT at = a.objectAttributes;
  info.fixed_tpm = at & TPMA_OBJECT_FIXEDTPM;
  info.fixed_parent = at & TPMA_OBJECT_FIXEDPARENT;
  info.sensitive_data_origin = at & TPMA_OBJECT_SENSITIVEDATAORIGIN;
  info.user_with_auth = at & TPMA_OBJECT_USERWITHAUTH;
  info.admin_with_policy = at & TPMA_OBJECT_ADMINWITHPOLICY;
  info.no_da = at & TPMA_OBJECT_NODA;
  info.decrypt = at & TPMA_OBJECT_DECRYPT;
  info.sign_encrypt = at & TPMA_OBJECT_SIGN_ENCRYPT;
  info.auth_policy.assign(a.authPolicy.buffer, a.authPolicy.buffer + a.authPolicy.size);
  info.name = MCIMD_TRY(object_name(public_area));
  return info;
}

}  // namespace mcimd::tpm
