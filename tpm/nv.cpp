// The NV monotonic counter behind the store's anti-rollback check.
#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

std::string index_name(uint32_t index) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "NV counter 0x00000000";
  for (int i = 20; i >= 13; --i, index >>= 4) out[i] = digits[index & 0xF];
  return out;
}

// TPM 2.0 Part 2, TPM_NT_COUNTER: 8 octets; AUTHREAD|AUTHWRITE with an empty auth lets mcimd read and
// increment without owner auth; NO_DA keeps failures from counting towards lockout; ORDERLY is
// left clear so that every increment reaches NV before the command returns.
constexpr TPMA_NV kCounterAttributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHREAD |
                                       TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA;
constexpr uint16_t kCounterSize = 8;

}  // namespace

Result<CounterIndex> Context::Impl::open_counter(uint32_t nv_index) {
  const auto name = index_name(nv_index);
  if ((nv_index >> TPM2_HR_SHIFT) != TPM2_HT_NV_INDEX)
    return fail(Code::InvalidArgument, "0x" + name.substr(13) + " is not an NV index handle (0x01xxxxxx)");
  ESYS_TR tr = ESYS_TR_NONE;
  auto found = call("look up " + name, [&] {
    return Esys_TR_FromTPMPublic(esys.get(), nv_index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  });
  if (!found) {
    if (classify_rc(*found.error().tss2_rc) != RcKind::HandleAbsent) return tl::unexpected(found.error());
    TPM2B_AUTH auth{};
    TPM2B_NV_PUBLIC pub{};
    pub.nvPublic.nvIndex = nv_index;
    pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
    pub.nvPublic.attributes = kCounterAttributes;
    pub.nvPublic.dataSize = kCounterSize;
    MCIMD_CHECK(call("define " + name + " (owner hierarchy)", [&] {
      return Esys_NV_DefineSpace(esys.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth,
                                 &pub, &tr);
    }));
    log::debug("Defined " + name);
    return CounterIndex{Object(*self, tr, /*flush_on_destroy=*/false), /*written=*/false};
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
    return fail(Code::InvalidState, "NV index 0x" + name.substr(13) +
                                        " exists but is not a counter readable and writable with its own auth; "
                                        "choose another index or undefine it");
  return CounterIndex{std::move(index), (nv.attributes & TPMA_NV_WRITTEN) != 0};
}

Status Context::Impl::increment_counter(const CounterIndex& counter, std::string_view name) {
  ESYS_TR tr = counter.handle.handle();
  return call("increment " + std::string(name), [&] {
    return Esys_NV_Increment(esys.get(), tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
  });
}

Result<uint64_t> Context::Impl::read_counter(const CounterIndex& counter, std::string_view name) {
  ESYS_TR tr = counter.handle.handle();
  EsysPtr<TPM2B_MAX_NV_BUFFER> data;
  MCIMD_CHECK(call("read " + std::string(name), [&] {
    return Esys_NV_Read(esys.get(), tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, kCounterSize, 0,
                        OutPtr(data));
  }));
  if (data->size != kCounterSize)
    return fail(Code::TpmFailure, "Failed to read " + std::string(name) + ": the TPM returned " +
                                      std::to_string(data->size) + " bytes instead of 8");
  uint64_t value = 0;
  for (uint16_t i = 0; i < kCounterSize; ++i) value = (value << 8) | data->buffer[i];  // big-endian, as the TPM stores it
  return value;
}

Result<uint64_t> Context::counter_read(uint32_t nv_index) {
  auto& impl = *impl_;
  auto counter = MCIMD_TRY(impl.open_counter(nv_index));
  const auto name = index_name(nv_index);
  // An index never incremented has no value (TPM_RC_NV_UNINITIALIZED); its first increment sets
  // it above every value any counter on this TPM has held (Part 3, TPM2_NV_Increment), so giving it one here
  // can never hand out a value lower than an earlier incarnation of the counter had.
  if (!counter.written) MCIMD_CHECK(impl.increment_counter(counter, name));
  return impl.read_counter(counter, name);
}

Result<uint64_t> Context::counter_increment(uint32_t nv_index) {
  auto& impl = *impl_;
  auto counter = MCIMD_TRY(impl.open_counter(nv_index));
  const auto name = index_name(nv_index);
  MCIMD_CHECK(impl.increment_counter(counter, name));
  return impl.read_counter(counter, name);
}

}  // namespace mcimd::tpm
