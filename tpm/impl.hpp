#pragma once
// Internal to tpm/: the ESAPI state behind a Context. The only header that includes <tss2/...>.
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tctildr.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <type_traits>

#include "common/c_handle.hpp"
#include "common/log.hpp"
#include "tpm/rc.hpp"
#include "tpm/testing.hpp"
#include "tpm/tpm.hpp"

namespace mcimd::tpm {

// --- RAII for what ESAPI and tctildr hand out ----------------------------------------------------
namespace detail {
inline void finalize_esys(ESYS_CONTEXT* c) { Esys_Finalize(&c); }
inline void finalize_tctildr(TSS2_TCTI_CONTEXT* c) { Tss2_TctiLdr_Finalize(&c); }
template <class T>
void wipe_and_free(T* p) {
  wipe(p, sizeof *p);
  Esys_Free(p);
}
}  // namespace detail

using EsysContext = CHandle<ESYS_CONTEXT, detail::finalize_esys>;
using TctiLdr = CHandle<TSS2_TCTI_CONTEXT, detail::finalize_tctildr>;
// A buffer ESAPI allocated for an output parameter.
template <class T>
using EsysPtr = CHandle<T, Esys_Free>;
// The same for outputs that hold secrets: wiped before they are freed.
template <class T>
using EsysSecretPtr = CHandle<T, detail::wipe_and_free<T>>;

// Hands a `T**` to an ESAPI output parameter and moves the result into the owning handle when the
// full expression ends: Esys_ReadPublic(..., OutPtr(pub), ...).
template <class Handle>
class OutPtr {
 public:
  explicit OutPtr(Handle& handle) : handle_(handle) {}
  ~OutPtr() { handle_.reset(raw_); }
  OutPtr(const OutPtr&) = delete;
  OutPtr& operator=(const OutPtr&) = delete;
  operator typename Handle::pointer*() { return &raw_; }

 private:
  Handle& handle_;
  typename Handle::pointer raw_ = nullptr;
};

// --- the transport ---------------------------------------------------------------------------------
// A TCTI in front of the one tctildr loaded: counts the commands that reach the TPM and, for
// tests, answers chosen commands itself (tpm/testing.hpp). Standard layout with the common TCTI
// header first, so ESAPI can call it like any TCTI.
struct TctiShim {
  TSS2_TCTI_CONTEXT_COMMON_V2 common;
  Context::Impl* owner;
};
static_assert(std::is_standard_layout_v<TctiShim>);

struct Injection {
  seam::InjectedResponse pending{0, 0, 0, std::nullopt};  // count 0: nothing to inject
  std::optional<uint32_t> answer;           // what the next receive returns instead of the TPM's answer
  std::optional<std::size_t> flip;          // the next receive flips this byte of the TPM's answer
};

// A counter mcimd reads and advances: its ESAPI handle (metadata only; NV indices are not
// flushed), the HMAC session that authenticates the TPM's answers, and its value while that
// session lives.
struct KeptCounter {
  Object index;
  Object session;
  SecureBytes auth;      // the auth the session was set up with
  bool written = false;  // TPMA_NV_WRITTEN: incremented at least once
  std::optional<uint64_t> value;
};

struct Context::AesKey::Slot {
  Object key;    // empty while evicted or flushed by someone else
  KeyBlob blob;  // to load it again
  bool in_use = false;
};

struct Context::Impl {
  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Members are destroyed in reverse order: ESAPI before the TCTIs below it.
  TctiLdr tctildr;
  TctiShim shim{};
  EsysContext esys;

  Context* self = nullptr;
  RetryPolicy retry;
  CommandStats stats;
  Injection injection;
  std::size_t live = 0;
  // A transport failure leaves ESAPI mid-command; every later command would fail confusingly.
  bool connection_lost = false;
  std::optional<ESYS_TR> srk;  // persistent: ESAPI metadata only, closed with the ESAPI context
  Bytes srk_public;
  std::optional<std::size_t> max_buffer;  // TPM_PT_INPUT_BUFFER, bounded by TPM2B_MAX_BUFFER
  // Kept across calls so that a use in steady state costs only its policy commands and itself:
  // the one salted policy session every policy-bound use runs in, and the counters' sessions.
  Object policy_session;
  bool policy_dirty = false;  // a failure since the last PolicyPCR: PolicyRestart before the next
  std::map<uint32_t, KeptCounter> counters;
  std::set<Context::AesKey::Slot*> aes_keys;  // loaded keys that give their slot up when the TPM is full
  std::map<uint32_t, Object> nv_indices;      // deletion counters PolicyNV names (ESAPI metadata only)

  void install_shim();

  // The one call site of every Esys_* command: runs fn (returning TSS2_RC), retries with backoff
  // on TPM_RC_RETRY/YIELDED/TESTING that ESAPI's own resubmissions did not absorb, and converts a
  // failure to Error("Failed to <what>: ...").
  template <class F>
  Status call(std::string_view what, F&& fn);
  // Runs attempt(restart) again while it fails with TPM_RC_PCR_CHANGED: the PCRs moved between
  // PolicyPCR and the command, so the whole sequence is redone (restart = true from the second
  // attempt on: the policy session must be reset first).
  template <class F>
  std::invoke_result_t<F&, bool> redo_on_pcr_change(F&& attempt);

  Result<ESYS_TR> srk_handle();
  // HMAC or policy session salted with the SRK, AES-128-CFB parameter encryption, SHA-256.
  Result<Object> start_salted_session(TPM2_SE type);
  // Without a salt: for sessions that carry no secret (the EK's policy session). Both give up the
  // kept sessions and try once more when the TPM has no free session slot.
  Result<Object> start_session(TPM2_SE type, bool salted);
  Status set_session_attributes(ESYS_TR session, TPMA_SESSION attributes);
  // Creates an object under the SRK through a salted session (the sensitive part travels encrypted).
  Result<KeyBlob> create_under_srk(const TPM2B_SENSITIVE_CREATE& sensitive, const TPM2B_PUBLIC& templ,
                                   std::string_view what);
  Result<Object> load(const KeyBlob& blob, std::string_view what);
  Result<std::size_t> input_buffer_size();
  // The kept counter for spec, looked up (and its session started) on first use; refuses an
  // index of another kind.
  Result<KeptCounter*> kept_counter(const CounterSpec& spec);
  // NV_Read in the counter's session; caches the value.
  Result<uint64_t> read_counter(KeptCounter& counter, uint32_t index);
  // Runs fn with the counter; when its session turned out unusable (stale, or out of step) the
  // counter is looked up afresh and fn runs once more: fn must send one command, which the TPM
  // did not run when it answered so.
  template <class F>
  std::invoke_result_t<F&, KeptCounter&> with_counter(const CounterSpec& spec, F&& fn);

  // Satisfies `policy` in the kept policy session, then runs use(session) — the one command the
  // policy authorizes. A stale kept session is replaced and the sequence redone once; a PCR
  // change between the policy and its use redoes it (bounded). PlatformStateChanged when the PCRs
  // differ from the approved values or the object is bound to another policy.
  // Deletion counters (tpm/deletion.cpp): the index checked to be one (InvalidState otherwise,
  // NotFound when undefined); its value, incremented first when asked or never written.
  Result<Object> deletion_counter_handle(uint32_t index, bool* written);
  Result<uint64_t> deletion_counter_value(uint32_t index, bool increment_first);
  // TPM2_PolicyNV(counter == value) in `session`; NotAuthorized when the counter moved on or is gone.
  Status policy_nv(ESYS_TR session, const NvBinding& binding);
  Status policy_nv_once(ESYS_TR session, const NvBinding& binding);
  Status with_policy(const ApprovedPolicy& policy, std::string_view what, const std::function<TSS2_RC(ESYS_TR)>& use);
  // A TPM without a resource manager has few slots (swtpm: three objects, three sessions) and
  // other clients use them too: when one is full, give up what we keep and can rebuild.
  void free_object_slots() noexcept;
  void free_session_slots() noexcept;
  bool kept_sessions_loaded() const { return policy_session || !counters.empty(); }
  // Closes (does not flush) a handle the TPM no longer has.
  void forget(Object& object) noexcept;
  void drop_kept() noexcept;

  void flush(ESYS_TR tr) noexcept;
  void close(ESYS_TR tr) noexcept;
};

// --- conversions ----------------------------------------------------------------------------------
// TPM_ALG_ID and digest size of a bank name; nullopt for an unknown bank.
struct BankInfo {
  TPM2_ALG_ID alg;
  std::size_t digest_size;
};
std::optional<BankInfo> bank_info(std::string_view bank);
// InvalidArgument for a bad bank or index.
Result<TPML_PCR_SELECTION> to_tpml(const PcrSelection& sel);

// --- marshaling ----------------------------------------------------------------------------------------
// A TPM structure to its tss2-mu wire form, and back; a blob that does not unmarshal exactly is
// InvalidArgument (hostile input from disk or the network, not a TPM failure).
template <class T, auto Marshal>
Result<Bytes> marshal(const T& value, std::string_view what) {
  Bytes out(sizeof(T));
  size_t offset = 0;
  TSS2_RC rc = Marshal(&value, out.data(), out.size(), &offset);
  if (rc != TSS2_RC_SUCCESS) return tl::unexpected(tpm_error("marshal " + std::string(what), rc));
  out.resize(offset);
  return out;
}

template <class T, auto Unmarshal>
Result<T> unmarshal(std::span<const uint8_t> data, std::string_view what) {
  T value{};
  size_t offset = 0;
  TSS2_RC rc = Unmarshal(data.data(), data.size(), &offset, &value);
  if (rc != TSS2_RC_SUCCESS || offset != data.size())
    return fail(Code::InvalidArgument, "Malformed " + std::string(what) + ": not a marshaled TPM structure");
  return value;
}

// "0x81000001": handles and NV indices in messages.
std::string hex32(uint32_t v);

// --- key templates ----------------------------------------------------------------------------------
// A primary restricted decryption key with the given attributes (TCG TPM v2.0 Provisioning Guidance
// §7.5.1, TCG EK Credential Profile 2.0 §B.3.3): SHA-256 name, AES-128-CFB for its children, ECC
// NIST P-256 or RSA 2048 with no scheme, unique zero-filled so every compliant tool derives the
// same key.
TPM2B_PUBLIC restricted_decryption_template(bool ecc, TPMA_OBJECT attributes);

// --- templates --------------------------------------------------------------------------------------
template <class F>
Status Context::Impl::call(std::string_view what, F&& fn) {
  if (connection_lost)
    return fail(Code::TpmFailure, "Failed to " + std::string(what) +
                                      ": the connection to the TPM was lost earlier; reopen the TPM context");
  auto backoff = retry.backoff;
  bool freed_objects = false;
  constexpr std::chrono::milliseconds kMaxBackoff{1000};
  for (unsigned attempt = 1;; ++attempt) {
    TSS2_RC rc = fn();
    if (rc == TSS2_RC_SUCCESS) return {};
    // A transport failure, or an answer whose authentication failed (ESAPI keeps no usable state
    // after either), leaves the context unusable.
    if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER || rc == TSS2_ESYS_RC_BAD_SEQUENCE ||
        rc == TSS2_ESYS_RC_RSP_AUTH_FAILED)
      connection_lost = true;
    const RcKind kind = classify_rc(rc);
    // No free object slot: the TPM refused the command before running it, so it is sent again
    // once after the AES keys we keep have given theirs up (they load again on use).
    if (rc_base(rc) == TPM2_RC_OBJECT_MEMORY && !aes_keys.empty() && !freed_objects) {
      free_object_slots();
      freed_objects = true;
      continue;
    }
    if ((kind != RcKind::Retry && kind != RcKind::NvRate) || attempt >= retry.max_attempts)
      return tl::unexpected(tpm_error(what, rc));
    // TPM_RC_NV_RATE (Part 2 §6.6.3): the TPM throttles NV writes for far longer than a busy spell.
    if (kind == RcKind::NvRate) backoff = std::max(backoff, retry.nv_rate_backoff);
    log::debug("TPM busy (" + std::string(Tss2_RC_Decode(rc)) + ") trying to " + std::string(what) +
               ", retrying in " + std::to_string(backoff.count()) + " ms");
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

template <class F>
std::invoke_result_t<F&, bool> Context::Impl::redo_on_pcr_change(F&& attempt) {
  for (unsigned n = 1;; ++n) {
    auto result = attempt(/*restart=*/n > 1);
    if (result || n >= retry.max_attempts || classify_rc(result.error().tss2_rc()) != RcKind::PcrChanged)
      return result;
    log::debug("PCRs changed between PolicyPCR and its use, redoing the policy");
  }
}

template <class F>
std::invoke_result_t<F&, KeptCounter&> Context::Impl::with_counter(const CounterSpec& spec, F&& fn) {
  for (int round = 0;; ++round) {
    KeptCounter* counter = MCIMD_TRY(kept_counter(spec));
    auto result = fn(*counter);
    const RcKind kind = result ? RcKind::Success : classify_rc(result.error().tss2_rc());
    // A stale session (flushed by a TPM reset or another client), or one whose nonces fell out of
    // step with the TPM's (an answer lost on the way): the TPM ran nothing; a new session, once.
    if (result || round > 0 || (kind != RcKind::Stale && kind != RcKind::BadAuth)) return result;
    log::debug("The counter's session is unusable (" + result.error().message + "); starting a new one");
    if (auto it = counters.find(spec.index); it != counters.end()) {
      // A stale handle may be someone else's by now: forgotten, not flushed. A session the TPM
      // refused is still loaded: flushed with the entry.
      if (kind == RcKind::Stale) forget(it->second.session);
      counters.erase(it);
    }
  }
}

}  // namespace mcimd::tpm
