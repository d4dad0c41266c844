// Deletion counters: one NV counter per profile, bound into its objects' policy with PolicyNV, so
// that advancing it on deletion makes every copy of those objects unusable (protocol/pcr_policy.hpp
// DeletionBinding has the model).
#include <cstring>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

std::string counter_name(uint32_t index) { return "deletion counter " + hex32(index); }

// TPM 2.0 Part 2 §13.4, as protocol::kDeletionCounterAttributes (WRITTEN aside): TPM_NT_COUNTER,
// AUTHREAD|AUTHWRITE with an empty authValue, NO_DA, not ORDERLY.
constexpr TPMA_NV kDeletionAttributes =
    (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA;
constexpr uint16_t kCounterSize = 8;

Status check_deletion_index(uint32_t index) {
  if ((index >> TPM2_HR_SHIFT) != TPM2_HT_NV_INDEX)
    return fail(Code::InvalidArgument, hex32(index) + " is not an NV index handle (0x01xxxxxx)");
  return {};
}

}  // namespace

Result<Object> Context::Impl::deletion_counter_handle(uint32_t index, bool* written) {
  MCIMD_CHECK(check_deletion_index(index));
  ESYS_TR tr = ESYS_TR_NONE;
  auto found = call("look up " + counter_name(index), [&] {
    return Esys_TR_FromTPMPublic(esys.get(), index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  });
  if (!found) {
    if (classify_rc(found.error().tss2_rc()) == RcKind::HandleAbsent)
      return fail(Code::NotFound, counter_name(index) + " is not defined");
    return tl::unexpected(found.error());
  }
  Object handle(*self, tr, /*flush_on_destroy=*/false);
  EsysPtr<TPM2B_NV_PUBLIC> pub;
  MCIMD_CHECK(call("read the public area of " + counter_name(index), [&] {
    return Esys_NV_ReadPublic(esys.get(), tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(pub), nullptr);
  }));
  const auto& nv = pub->nvPublic;
  // Exactly our template: an index with a policy, another kind or other attributes at this
  // handle is someone else's, and its name would never match the objects' policy anyway.
  if ((nv.attributes & ~TPMA_NV_WRITTEN) != kDeletionAttributes || nv.dataSize != kCounterSize ||
      nv.authPolicy.size != 0 || nv.nameAlg != TPM2_ALG_SHA256)
    return fail(Code::InvalidState, hex32(index) + " exists but is not a deletion counter (attributes 0x" +
                                        hex32(nv.attributes).substr(2) + "); choose another tpm.deletion-counter-base "
                                        "or undefine it");
  if (written) *written = (nv.attributes & TPMA_NV_WRITTEN) != 0;
  return handle;
}

Result<uint64_t> Context::Impl::deletion_counter_value(uint32_t index, bool increment_first) {
  bool written = false;
  Object handle = MCIMD_TRY(deletion_counter_handle(index, &written));
  const ESYS_TR tr = handle.handle();
  // An empty authValue, but an HMAC session salted with the SRK all the same: the TPM's answer is
  // authenticated, so nothing on the bus can report an increment that did not happen.
  Object session = MCIMD_TRY(start_salted_session(TPM2_SE_HMAC));
  MCIMD_CHECK(set_session_attributes(session.handle(), TPMA_SESSION_CONTINUESESSION));
  if (increment_first || !written)
    MCIMD_CHECK(call("increment " + counter_name(index), [&] {
      return Esys_NV_Increment(esys.get(), tr, tr, session.handle(), ESYS_TR_NONE, ESYS_TR_NONE);
    }));
  EsysPtr<TPM2B_MAX_NV_BUFFER> data;
  MCIMD_CHECK(call("read " + counter_name(index), [&] {
    return Esys_NV_Read(esys.get(), tr, tr, session.handle(), ESYS_TR_NONE, ESYS_TR_NONE, kCounterSize, 0, OutPtr(data));
  }));
  if (data->size != kCounterSize)
    return fail(Code::TpmFailure, "Failed to read " + counter_name(index) + ": the TPM returned " +
                                      std::to_string(data->size) + " bytes instead of 8");
  uint64_t value = 0;
  for (uint16_t i = 0; i < kCounterSize; ++i) value = (value << 8) | data->buffer[i];  // big-endian
  nv_indices.erase(index);  // PolicyNV looks it up afresh: its name changed when first written
  return value;
}

Result<uint64_t> Context::deletion_counter_prepare(uint32_t index) {
  auto& impl = *impl_;
  auto value = impl.deletion_counter_value(index, /*increment_first=*/false);
  if (value || value.error().code != Code::NotFound) return value;
  TPM2B_AUTH empty{};
  TPM2B_NV_PUBLIC pub{};
  pub.nvPublic.nvIndex = index;
  pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
  pub.nvPublic.attributes = kDeletionAttributes;
  pub.nvPublic.dataSize = kCounterSize;
  ESYS_TR tr = ESYS_TR_NONE;
  auto defined = impl.call("define " + counter_name(index) + " (owner hierarchy)", [&] {
    return Esys_NV_DefineSpace(impl.esys.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &empty, &pub, &tr);
  });
  if (!defined && rc_base(defined.error().tss2_rc()) != TPM2_RC_NV_DEFINED) return tl::unexpected(defined.error());
  if (defined) impl.close(tr);
  log::debug("Defined " + counter_name(index));
  // Its first increment sets it above every value any counter of this TPM has held.
  return impl.deletion_counter_value(index, /*increment_first=*/false);
}

Result<uint64_t> Context::deletion_counter_read(uint32_t index) {
  return impl_->deletion_counter_value(index, /*increment_first=*/false);
}

Result<uint64_t> Context::deletion_counter_advance(uint32_t index) {
  return impl_->deletion_counter_value(index, /*increment_first=*/true);
}

Status Context::Impl::policy_nv(ESYS_TR session, const NvBinding& binding) {
  auto done = policy_nv_once(session, binding);
  // The kept handle went stale (the index was undefined, perhaps defined anew): look it up again.
  if (!done && done.error().code == Code::TpmFailure && rc_base(done.error().tss2_rc()) == TPM2_RC_HANDLE)
    done = policy_nv_once(session, binding);
  return done;
}

Status Context::Impl::policy_nv_once(ESYS_TR session, const NvBinding& binding) {
  auto it = nv_indices.find(binding.nv_index);
  if (it == nv_indices.end()) {
    auto handle = deletion_counter_handle(binding.nv_index, nullptr);
    if (!handle) {
      if (handle.error().code == Code::NotFound)
        return fail(Code::NotAuthorized, "The profile was deleted: its " + counter_name(binding.nv_index) +
                                             " is gone, so these objects can never be used again");
      return tl::unexpected(handle.error());
    }
    it = nv_indices.emplace(binding.nv_index, std::move(*handle)).first;
  }
  const ESYS_TR tr = it->second.handle();
  TPM2B_OPERAND operand{};
  operand.size = kCounterSize;
  for (int i = 0; i < kCounterSize; ++i) operand.buffer[i] = static_cast<uint8_t>(binding.value >> (56 - 8 * i));
  auto checked = call("apply the deletion binding (PolicyNV on " + counter_name(binding.nv_index) + ")", [&] {
    return Esys_PolicyNV(esys.get(), tr, tr, session, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &operand, 0,
                         TPM2_EO_EQ);
  });
  if (!checked) {
    nv_indices.erase(binding.nv_index);
    // TPM_RC_POLICY: the comparison failed, the counter moved on (Part 3 §23.9).
    if (rc_base(checked.error().tss2_rc()) == TPM2_RC_POLICY)
      return fail(Code::NotAuthorized, "The profile was deleted: its " + counter_name(binding.nv_index) +
                                           " has moved past " + std::to_string(binding.value) +
                                           ", so these objects can never be used again");
  }
  return checked;
}

}  // namespace mcimd::tpm
