// The NV monotonic counter behind the store's anti-rollback check: only the holder of its auth
// can read or advance it, and every answer about it is authenticated.
#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

std::string index_name(uint32_t index) { return "NV counter " + hex32(index); }

// TPM 2.0 Part 2 §13.4 TPMA_NV: a TPM_NT_COUNTER of 8 octets. AUTHREAD|AUTHWRITE: reading and
// incrementing need the index's own authValue, which only mcimd holds (a TPM user can no longer
// advance it and brick the store). NO_DA: a wrong guess never counts towards lockout. ORDERLY:
// an increment changes RAM only, NV is written every MAX_ORDERLY_COUNT + 1 increments; after an
// unclean shutdown the TPM moves the counter forward, never back (Part 1, NV indices with
// TPMA_NV_ORDERLY), which the store accepts within a bounded window.
constexpr TPMA_NV kCounterAttributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHREAD |
                                       TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA | TPMA_NV_ORDERLY;
constexpr uint16_t kCounterSize = 8;

Status check_index(uint32_t index) {
  if ((index >> TPM2_HR_SHIFT) != TPM2_HT_NV_INDEX)
    return fail(Code::InvalidArgument, hex32(index) + " is not an NV index handle (0x01xxxxxx)");
  return {};
}

Status check_auth(const CounterSpec& spec) {
  MCIMD_CHECK(check_index(spec.index));
  if (spec.auth.empty() || spec.auth.size() > 32)
    return fail(Code::InvalidArgument, "The auth of " + index_name(spec.index) + " must be 1 to 32 bytes");
  return {};
}

// The counter's answer failed authentication or the counter refused us: name the likely cause.
Error counter_error(Error e, uint32_t index) {
  if (classify_rc(e.tss2_rc()) == RcKind::BadAuth)
    return Error{Code::NotAuthorized,
                 "Failed to use " + index_name(index) +
                     ": it does not accept this store's key (defined by another process, or for another store)",
                 e.tss2_rc()};
  if (e.tss2_rc() == TSS2_ESYS_RC_RSP_AUTH_FAILED)
    return Error{Code::TpmFailure,
                 "Failed to use " + index_name(index) +
                     ": the TPM's answer failed authentication (something between mcimd and the TPM altered it)",
                 e.tss2_rc()};
  return e;
}

}  // namespace

Result<KeptCounter*> Context::Impl::kept_counter(const CounterSpec& spec) {
  MCIMD_CHECK(check_auth(spec));
  if (auto it = counters.find(spec.index); it != counters.end()) {
    if (equal_ct(it->second.auth, spec.auth)) return &it->second;
    counters.erase(it);  // asked with another auth: look it up afresh and let the TPM judge
  }
  const auto name = index_name(spec.index);
  ESYS_TR tr = ESYS_TR_NONE;
  auto found = call("look up " + name, [&] {
    return Esys_TR_FromTPMPublic(esys.get(), spec.index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  });
  if (!found) {
    if (classify_rc(found.error().tss2_rc()) == RcKind::HandleAbsent)
      return fail(Code::NotFound, name + " is not defined");
    return tl::unexpected(found.error());
  }
  Object index(*self, tr, /*flush_on_destroy=*/false);
  EsysPtr<TPM2B_NV_PUBLIC> pub;
  MCIMD_CHECK(call("read the public area of " + name, [&] {
    return Esys_NV_ReadPublic(esys.get(), tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(pub), nullptr);
  }));
  const auto& nv = pub->nvPublic;
  constexpr TPMA_NV kNeeded = TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE;
  if ((nv.attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT != TPM2_NT_COUNTER ||
      nv.dataSize != kCounterSize || (nv.attributes & kNeeded) != kNeeded)
    return fail(Code::InvalidState, hex32(spec.index) +
                                        " exists but is not a counter readable and writable with its own auth; "
                                        "choose another index or undefine it");
  TPM2B_AUTH auth{};
  auth.size = static_cast<uint16_t>(spec.auth.size());
  std::copy(spec.auth.begin(), spec.auth.end(), auth.buffer);
  TSS2_RC rc = Esys_TR_SetAuth(esys.get(), tr, &auth);
  wipe(&auth, sizeof auth);
  if (rc != TSS2_RC_SUCCESS) return tl::unexpected(tpm_error("set the auth of " + name, rc));
  // Salted with the SRK: the session key is unknown on the bus even before the auth is mixed in.
  Object session = MCIMD_TRY(start_salted_session(TPM2_SE_HMAC));
  MCIMD_CHECK(set_session_attributes(session.handle(), TPMA_SESSION_CONTINUESESSION));
  KeptCounter kept{std::move(index), std::move(session), spec.auth, (nv.attributes & TPMA_NV_WRITTEN) != 0,
                   std::nullopt};
  return &counters.insert_or_assign(spec.index, std::move(kept)).first->second;
}

Result<uint64_t> Context::Impl::read_counter(KeptCounter& counter, uint32_t index) {
  const ESYS_TR tr = counter.index.handle();
  EsysPtr<TPM2B_MAX_NV_BUFFER> data;
  MCIMD_CHECK(call("read " + index_name(index), [&] {
    return Esys_NV_Read(esys.get(), tr, tr, counter.session.handle(), ESYS_TR_NONE, ESYS_TR_NONE, kCounterSize, 0,
                        OutPtr(data));
  }));
  if (data->size != kCounterSize)
    return fail(Code::TpmFailure, "Failed to read " + index_name(index) + ": the TPM returned " +
                                      std::to_string(data->size) + " bytes instead of 8");
  uint64_t value = 0;
  for (uint16_t i = 0; i < kCounterSize; ++i) value = (value << 8) | data->buffer[i];  // big-endian, as the TPM stores it
  counter.value = value;
  return value;
}

Result<uint64_t> Context::counter_read(const CounterSpec& spec) {
  auto& impl = *impl_;
  auto r = impl.with_counter(spec, [&](KeptCounter& counter) -> Result<uint64_t> {
    if (counter.value) return *counter.value;
    const ESYS_TR tr = counter.index.handle();
    // An index never incremented has no value (TPM_RC_NV_UNINITIALIZED); its first increment
    // sets it above every value any counter on this TPM has held (Part 3 §31.8 TPM2_NV_Increment),
    // so giving it one here never hands out a value an earlier counter at this index had.
    if (!counter.written) {
      MCIMD_CHECK(impl.call("increment " + index_name(spec.index), [&] {
        return Esys_NV_Increment(impl.esys.get(), tr, tr, counter.session.handle(), ESYS_TR_NONE, ESYS_TR_NONE);
      }));
      counter.written = true;
    }
    return impl.read_counter(counter, spec.index);
  });
  if (!r) return tl::unexpected(counter_error(r.error(), spec.index));
  return r;
}

Result<uint64_t> Context::counter_increment(const CounterSpec& spec) {
  auto& impl = *impl_;
  auto incremented = impl.with_counter(spec, [&](KeptCounter& counter) -> Status {
    const ESYS_TR tr = counter.index.handle();
    auto done = impl.call("increment " + index_name(spec.index), [&] {
      return Esys_NV_Increment(impl.esys.get(), tr, tr, counter.session.handle(), ESYS_TR_NONE, ESYS_TR_NONE);
    });
    if (!done) {
      counter.value.reset();  // whether it moved is unknown now: read it next time
      return done;
    }
    counter.written = true;
    // Only this session's holder can move the counter and the session lives no longer than the
    // TPM's power cycle, so the new value is the cached one plus one.
    if (counter.value) ++*counter.value;
    return {};
  });
  if (!incremented) return tl::unexpected(counter_error(incremented.error(), spec.index));
  // The cached value, or (in a session started since) an authenticated read: a second command,
  // never a second increment.
  return counter_read(spec);
}

Status Context::counter_define(const CounterSpec& spec) {
  MCIMD_CHECK(check_auth(spec));
  auto& impl = *impl_;
  const auto name = index_name(spec.index);
  // The auth is the command's first parameter: a salted session encrypts it on the way in.
  Object enc = MCIMD_TRY(impl.start_salted_session(TPM2_SE_HMAC));
  // continueSession: the session stays loaded after the command, so our handle owns what the
  // destructor flushes (a TPM without a resource manager reuses a flushed handle for others).
  MCIMD_CHECK(impl.set_session_attributes(enc.handle(), TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION));
  TPM2B_AUTH auth{};
  auth.size = static_cast<uint16_t>(spec.auth.size());
  std::copy(spec.auth.begin(), spec.auth.end(), auth.buffer);
  TPM2B_NV_PUBLIC pub{};
  pub.nvPublic.nvIndex = spec.index;
  pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
  pub.nvPublic.attributes = kCounterAttributes;
  pub.nvPublic.dataSize = kCounterSize;
  ESYS_TR tr = ESYS_TR_NONE;
  auto defined = impl.call("define " + name + " (owner hierarchy)", [&] {
    return Esys_NV_DefineSpace(impl.esys.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, enc.handle(), ESYS_TR_NONE, &auth,
                               &pub, &tr);
  });
  wipe(&auth, sizeof auth);
  if (!defined) {
    if (rc_base(defined.error().tss2_rc()) == TPM2_RC_NV_DEFINED)
      return fail(Code::AlreadyExists, name + " is defined already");
    return defined;
  }
  impl.close(tr);
  impl.counters.erase(spec.index);
  log::debug("Defined " + name);
  return {};
}

Status Context::counter_undefine(uint32_t index) {
  MCIMD_CHECK(check_index(index));
  auto& impl = *impl_;
  if (auto it = impl.counters.find(index); it != impl.counters.end()) impl.counters.erase(it);
  ESYS_TR tr = ESYS_TR_NONE;
  auto found = impl.call("look up " + index_name(index), [&] {
    return Esys_TR_FromTPMPublic(impl.esys.get(), index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  });
  if (!found) {
    if (classify_rc(found.error().tss2_rc()) == RcKind::HandleAbsent) return fail(Code::NotFound, index_name(index) + " is not defined");
    return found;
  }
  auto undefined = impl.call("undefine " + index_name(index), [&] {
    return Esys_NV_UndefineSpace(impl.esys.get(), ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
  });
  if (!undefined) {
    impl.close(tr);
    return undefined;
  }
  log::debug("Undefined " + index_name(index));
  return {};
}

Result<ClockState> Context::read_clock() {
  auto& impl = *impl_;
  EsysPtr<TPMS_TIME_INFO> info;
  MCIMD_CHECK(impl.call("read the TPM clock", [&] {
    return Esys_ReadClock(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(info));
  }));
  return ClockState{info->clockInfo.clock, info->clockInfo.resetCount, info->clockInfo.restartCount,
                    info->clockInfo.safe == TPM2_YES};
}

Result<bool> Context::owner_auth_set() {
  auto& impl = *impl_;
  EsysPtr<TPMS_CAPABILITY_DATA> caps;
  TPMI_YES_NO more = TPM2_NO;
  MCIMD_CHECK(impl.call("read the TPM's permanent attributes", [&] {
    return Esys_GetCapability(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                              TPM2_PT_PERMANENT, 1, &more, OutPtr(caps));
  }));
  const auto& props = caps->data.tpmProperties;
  if (props.count == 0 || props.tpmProperty[0].property != TPM2_PT_PERMANENT)
    return fail(Code::TpmFailure, "The TPM did not report TPM_PT_PERMANENT");
  return (props.tpmProperty[0].value & TPMA_PERMANENT_OWNERAUTHSET) != 0;
}

}  // namespace mcimd::tpm
