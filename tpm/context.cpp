// Context lifetime, the counting transport, handle ownership, the SRK, sessions and policies.
#include <tss2/tss2_mu.h>

#include <cstring>
#include <utility>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

// --- the counting transport ------------------------------------------------------------------------
// Part 1 §18.2: every command and response starts with tag (2 octets), size (4), code (4).
constexpr std::size_t kHeaderSize = 10;
constexpr uint64_t kShimMagic = 0x6d63696d642d7463ull;  // any value: only this file reads it

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

Context::Impl& owner_of(TSS2_TCTI_CONTEXT* tcti) { return *reinterpret_cast<TctiShim*>(tcti)->owner; }

TSS2_RC shim_transmit(TSS2_TCTI_CONTEXT* tcti, size_t size, const uint8_t* command) {
  if (!tcti || !command) return TSS2_TCTI_RC_BAD_REFERENCE;
  auto& impl = owner_of(tcti);
  uint32_t code = size >= kHeaderSize ? load_be32(command + 6) : 0;
  auto& pending = impl.injection.pending;
  if (pending.count > 0 && (pending.command_code == 0 || pending.command_code == code)) {
    --pending.count;
    if (pending.flip_response_byte) {
      impl.injection.flip = pending.flip_response_byte;
      ++impl.stats.commands;
      return Tss2_Tcti_Transmit(impl.tctildr.get(), size, command);
    }
    if (pending.rc & TSS2_RC_LAYER_MASK) return pending.rc;  // the transport itself fails
    impl.injection.answer = pending.rc;
    return TSS2_RC_SUCCESS;
  }
  ++impl.stats.commands;
  if (code == TPM2_CC_EncryptDecrypt2) ++impl.stats.encrypt_decrypt;
  TSS2_TCTI_CONTEXT* inner = impl.tctildr.get();
  return Tss2_Tcti_Transmit(inner, size, command);
}

TSS2_RC shim_receive(TSS2_TCTI_CONTEXT* tcti, size_t* size, uint8_t* response, int32_t timeout) {
  if (!tcti || !size) return TSS2_TCTI_RC_BAD_REFERENCE;
  auto& impl = owner_of(tcti);
  if (!impl.injection.answer) {
    TSS2_TCTI_CONTEXT* inner = impl.tctildr.get();
    TSS2_RC rc = Tss2_Tcti_Receive(inner, size, response, timeout);
    if (rc == TSS2_RC_SUCCESS && response && impl.injection.flip) {
      if (*impl.injection.flip < *size) response[*impl.injection.flip] ^= 0x01;
      impl.injection.flip.reset();
    }
    return rc;
  }
  if (!response) {  // size query
    *size = kHeaderSize;
    return TSS2_RC_SUCCESS;
  }
  if (*size < kHeaderSize) return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
  response[0] = static_cast<uint8_t>(TPM2_ST_NO_SESSIONS >> 8);
  response[1] = static_cast<uint8_t>(TPM2_ST_NO_SESSIONS & 0xFF);
  store_be32(response + 2, kHeaderSize);
  store_be32(response + 6, *impl.injection.answer);
  impl.injection.answer.reset();
  *size = kHeaderSize;
  return TSS2_RC_SUCCESS;
}

void shim_finalize(TSS2_TCTI_CONTEXT*) {}  // the Impl owns the tctildr below and finalizes it

TSS2_RC shim_cancel(TSS2_TCTI_CONTEXT* tcti) {
  TSS2_TCTI_CONTEXT* inner = owner_of(tcti).tctildr.get();
  return Tss2_Tcti_Cancel(inner);
}

TSS2_RC shim_get_poll_handles(TSS2_TCTI_CONTEXT* tcti, TSS2_TCTI_POLL_HANDLE* handles, size_t* num_handles) {
  TSS2_TCTI_CONTEXT* inner = owner_of(tcti).tctildr.get();
  return Tss2_Tcti_GetPollHandles(inner, handles, num_handles);
}

TSS2_RC shim_set_locality(TSS2_TCTI_CONTEXT* tcti, uint8_t locality) {
  TSS2_TCTI_CONTEXT* inner = owner_of(tcti).tctildr.get();
  return Tss2_Tcti_SetLocality(inner, locality);
}

TSS2_RC shim_make_sticky(TSS2_TCTI_CONTEXT* tcti, TPM2_HANDLE* handle, uint8_t sticky) {
  TSS2_TCTI_CONTEXT* inner = owner_of(tcti).tctildr.get();
  return Tss2_Tcti_MakeSticky(inner, handle, sticky);
}

// TCG TPM v2.0 Provisioning Guidance §7.5.1 storage key templates: restricted decryption key,
// AES-128-CFB for its children, no DA, empty auth, unique all zeros (so every compliant tool
// derives the same key).
TPM2B_PUBLIC srk_template(bool ecc) {
  return restricted_decryption_template(
      ecc, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
               TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT);
}

}  // namespace

TPM2B_PUBLIC restricted_decryption_template(bool ecc, TPMA_OBJECT attributes) {
  TPM2B_PUBLIC t{};
  auto& a = t.publicArea;
  a.nameAlg = TPM2_ALG_SHA256;
  a.objectAttributes = attributes;
  TPMT_SYM_DEF_OBJECT sym{};
  sym.algorithm = TPM2_ALG_AES;
  sym.keyBits.aes = 128;
  sym.mode.aes = TPM2_ALG_CFB;
  if (ecc) {
    a.type = TPM2_ALG_ECC;
    a.parameters.eccDetail.symmetric = sym;
    a.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    a.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    a.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    a.unique.ecc.x.size = 32;
    a.unique.ecc.y.size = 32;
  } else {
    a.type = TPM2_ALG_RSA;
    a.parameters.rsaDetail.symmetric = sym;
    a.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    a.parameters.rsaDetail.keyBits = 2048;
    a.parameters.rsaDetail.exponent = 0;  // the default, 2^16 + 1
    a.unique.rsa.size = 256;
  }
  return t;
}

// --- Context ------------------------------------------------------------------------------------------
Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->self = this; }

Context::~Context() {
  if (impl_) impl_->drop_kept();
  if (impl_ && impl_->live > 0)
    log::debug(std::to_string(impl_->live) + " TPM handles still loaded when the TPM context closed");
}

Result<std::unique_ptr<Context>> Context::open(const ContextOptions& options) {
  if (options.retry.max_attempts == 0) return fail(Code::InvalidArgument, "TPM retry attempts must be at least 1");
  auto impl = std::make_unique<Impl>();
  impl->retry = options.retry;

  TSS2_TCTI_CONTEXT* tcti = nullptr;
  TSS2_RC rc = Tss2_TctiLdr_Initialize(options.tcti.empty() ? nullptr : options.tcti.c_str(), &tcti);
  if (rc != TSS2_RC_SUCCESS) {
    auto error = tpm_error("open the TPM transport '" + options.tcti + "'", rc);
    if (rc == TSS2_TCTI_RC_NOT_SUPPORTED) error.message += " (no TCTI library of that name is installed)";
    return tl::unexpected(std::move(error));
  }
  impl->tctildr.reset(tcti);
  impl->install_shim();

  ESYS_CONTEXT* esys = nullptr;
  rc = Esys_Initialize(&esys, reinterpret_cast<TSS2_TCTI_CONTEXT*>(&impl->shim), nullptr);
  if (rc != TSS2_RC_SUCCESS) return tl::unexpected(tpm_error("initialize the ESAPI context", rc));
  impl->esys.reset(esys);
  log::debug("Opened TPM context on '" + options.tcti + "'");
  return std::unique_ptr<Context>(new Context(std::move(impl)));
}

void Context::Impl::install_shim() {
  auto& v1 = shim.common.v1;
  v1.magic = kShimMagic;
  v1.version = 2;
  v1.transmit = shim_transmit;
  v1.receive = shim_receive;
  v1.finalize = shim_finalize;
  v1.cancel = shim_cancel;
  v1.getPollHandles = shim_get_poll_handles;
  v1.setLocality = shim_set_locality;
  shim.common.makeSticky = shim_make_sticky;
  shim.owner = this;
}

CommandStats Context::stats() const { return impl_->stats; }
bool Context::usable() const { return !impl_->connection_lost; }
std::size_t Context::live_handles() const { return impl_->live; }

std::string hex32(uint32_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "0x00000000";
  for (int i = 9; i >= 2; --i, v >>= 4) out[i] = digits[v & 0xF];
  return out;
}

namespace seam {
void inject_response(Context& ctx, const InjectedResponse& injection) { ctx.impl_->injection.pending = injection; }
}  // namespace seam

// --- Object -------------------------------------------------------------------------------------------
Object::Object(Context& ctx, uint32_t esys_tr, bool flush_on_destroy)
    : ctx_(&ctx), tr_(esys_tr), flush_(flush_on_destroy) {
  if (flush_) ++ctx.impl_->live;
}

Object::Object(Object&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)), tr_(std::exchange(o.tr_, 0)), flush_(std::exchange(o.flush_, false)) {}

Object& Object::operator=(Object&& o) noexcept {
  if (this != &o) {
    reset();
    ctx_ = std::exchange(o.ctx_, nullptr);
    tr_ = std::exchange(o.tr_, 0);
    flush_ = std::exchange(o.flush_, false);
  }
  return *this;
}

Object::~Object() { reset(); }

uint32_t Object::release() {
  if (ctx_ && flush_) --ctx_->impl_->live;
  ctx_ = nullptr;
  flush_ = false;
  return std::exchange(tr_, 0);
}

void Object::reset() noexcept {
  if (!ctx_) return;
  auto& impl = *ctx_->impl_;
  if (flush_) {
    impl.flush(tr_);
    --impl.live;
  } else {
    impl.close(tr_);
  }
  ctx_ = nullptr;
  tr_ = 0;
  flush_ = false;
}

void Context::Impl::flush(ESYS_TR tr) noexcept {
  auto flushed = call("flush a TPM handle", [&] { return Esys_FlushContext(esys.get(), tr); });
  if (!flushed) {
    log::debug(flushed.error().message + ", ignoring.");
    close(tr);  // at least free ESAPI's metadata
  }
}

void Context::Impl::close(ESYS_TR tr) noexcept {
  TSS2_RC rc = Esys_TR_Close(esys.get(), &tr);
  if (rc != TSS2_RC_SUCCESS) log::debug("Failed to close an ESAPI handle: " + std::string(Tss2_RC_Decode(rc)) + ", ignoring.");
}

// --- SRK ----------------------------------------------------------------------------------------------
namespace {

bool is_storage_key(const TPMT_PUBLIC& p) {
  constexpr TPMA_OBJECT needed = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  return (p.type == TPM2_ALG_ECC || p.type == TPM2_ALG_RSA) && (p.objectAttributes & needed) == needed &&
         !(p.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT);
}

}  // namespace

Result<Bytes> Context::srk_public() {
  MCIMD_TRY(impl_->srk_handle());
  return impl_->srk_public;
}

Result<ESYS_TR> Context::Impl::srk_handle() {
  if (srk) return *srk;
  // Two tries: when another process persists an SRK between our look-up and EvictControl, the
  // second look-up finds it.
  for (int round = 0; round < 2; ++round) {
    ESYS_TR tr = ESYS_TR_NONE;
    auto found = call("look up the SRK at " + hex32(kSrkHandle), [&] {
      return Esys_TR_FromTPMPublic(esys.get(), kSrkHandle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
    });
    if (found) {
      Object handle(*self, tr, /*flush_on_destroy=*/false);
      EsysPtr<TPM2B_PUBLIC> pub;
      MCIMD_CHECK(call("read the SRK's public area", [&] {
        return Esys_ReadPublic(esys.get(), tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(pub), nullptr, nullptr);
      }));
      if (!is_storage_key(pub->publicArea))
        return fail(Code::TpmFailure, "The object at " + hex32(kSrkHandle) +
                                          " is not a storage key (restricted decryption key); refusing to use it as SRK");
      srk_public = MCIMD_TRY((marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(*pub, "the SRK public area")));
      srk = handle.release();
      return *srk;
    }
    if (classify_rc(found.error().tss2_rc()) != RcKind::HandleAbsent) return tl::unexpected(found.error());

    // No SRK yet: ECC P-256 when the TPM has it (DESIGN.md), RSA-2048 otherwise.
    EsysPtr<TPMS_CAPABILITY_DATA> curves;
    TPMI_YES_NO more = TPM2_NO;
    auto queried = call("query the TPM's ECC curves", [&] {
      return Esys_GetCapability(esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_ECC_CURVES,
                                TPM2_ECC_NIST_P256, 1, &more, OutPtr(curves));
    });
    bool ecc = queried && curves->data.eccCurves.count > 0 &&
               curves->data.eccCurves.eccCurves[0] == TPM2_ECC_NIST_P256;
    if (!queried && (queried.error().tss2_rc() & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
      return tl::unexpected(queried.error());

    TPM2B_PUBLIC templ = srk_template(ecc);
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation_pcrs{};
    ESYS_TR primary = ESYS_TR_NONE;
    EsysPtr<TPM2B_PUBLIC> pub;
    MCIMD_CHECK(call(ecc ? "create the ECC P-256 SRK" : "create the RSA-2048 SRK", [&] {
      return Esys_CreatePrimary(esys.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                &sensitive, &templ, &outside, &creation_pcrs, &primary, OutPtr(pub), nullptr, nullptr,
                                nullptr);
    }));
    Object transient(*self, primary, /*flush_on_destroy=*/true);
    ESYS_TR persistent = ESYS_TR_NONE;
    auto persisted = call("persist the SRK at " + hex32(kSrkHandle), [&] {
      return Esys_EvictControl(esys.get(), ESYS_TR_RH_OWNER, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               kSrkHandle, &persistent);
    });
    if (!persisted) {
      if (round == 0 && rc_base(persisted.error().tss2_rc()) == TPM2_RC_NV_DEFINED) continue;
      return tl::unexpected(persisted.error());
    }
    srk_public = MCIMD_TRY((marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(*pub, "the SRK public area")));
    srk = persistent;
    log::debug(std::string("Created the ") + (ecc ? "ECC P-256" : "RSA-2048") + " SRK at " + hex32(kSrkHandle));
    return *srk;
  }
  return fail(Code::TpmFailure, "Failed to set up the SRK at " + hex32(kSrkHandle));
}

// --- sessions and policies ----------------------------------------------------------------------------
Result<Object> Context::Impl::start_salted_session(TPM2_SE type) { return start_session(type, /*salted=*/true); }

Result<Object> Context::Impl::start_session(TPM2_SE type, bool salted) {
  ESYS_TR salt_key = ESYS_TR_NONE;
  TPMT_SYM_DEF sym{};
  sym.algorithm = TPM2_ALG_NULL;
  if (salted) {
    salt_key = MCIMD_TRY(srk_handle());
    sym.algorithm = TPM2_ALG_AES;
    sym.keyBits.aes = 128;
    sym.mode.aes = TPM2_ALG_CFB;
  }
  const std::string what = std::string("start a ") + (salted ? "salted " : "") +
                           (type == TPM2_SE_POLICY ? "policy session" : "HMAC session");
  ESYS_TR session = ESYS_TR_NONE;
  auto start = [&] {
    return call(what, [&] {
      return Esys_StartAuthSession(esys.get(), salt_key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                   nullptr, type, &sym, TPM2_ALG_SHA256, &session);
    });
  };
  auto started = start();
  if (!started && rc_base(started.error().tss2_rc()) == TPM2_RC_SESSION_MEMORY && kept_sessions_loaded()) {
    free_session_slots();
    started = start();
  }
  MCIMD_CHECK(started);
  return Object(*self, session, /*flush_on_destroy=*/true);
}

Status Context::Impl::set_session_attributes(ESYS_TR session, TPMA_SESSION attributes) {
  TSS2_RC rc = Esys_TRSess_SetAttributes(esys.get(), session, attributes, 0xFF);
  if (rc != TSS2_RC_SUCCESS) return tl::unexpected(tpm_error("set session attributes", rc));
  return {};
}

// --- objects under the SRK ----------------------------------------------------------------------------
Result<KeyBlob> Context::Impl::create_under_srk(const TPM2B_SENSITIVE_CREATE& sensitive, const TPM2B_PUBLIC& templ,
                                                std::string_view what) {
  ESYS_TR parent = MCIMD_TRY(srk_handle());
  Object session = MCIMD_TRY(start_salted_session(TPM2_SE_HMAC));
  // inSensitive (the secret) is the first command parameter, outPrivate the first response one.
  MCIMD_CHECK(set_session_attributes(
      session.handle(), TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION));
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcrs{};
  EsysPtr<TPM2B_PRIVATE> priv;
  EsysPtr<TPM2B_PUBLIC> pub;
  MCIMD_CHECK(call(what, [&] {
    return Esys_Create(esys.get(), parent, session.handle(), ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &templ, &outside,
                       &creation_pcrs, OutPtr(priv), OutPtr(pub), nullptr, nullptr, nullptr);
  }));
  KeyBlob blob;
  blob.public_area = MCIMD_TRY((marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(*pub, "a public area")));
  blob.private_area = MCIMD_TRY((marshal<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Marshal>(*priv, "a private area")));
  return blob;
}

Result<Object> Context::Impl::load(const KeyBlob& blob, std::string_view what) {
  auto pub = MCIMD_TRY((unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(
      blob.public_area, "public area of " + std::string(what))));
  auto priv = MCIMD_TRY((unmarshal<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Unmarshal>(
      blob.private_area, "private area of " + std::string(what))));
  ESYS_TR parent = MCIMD_TRY(srk_handle());
  ESYS_TR object = ESYS_TR_NONE;
  // The private area is already encrypted under the SRK: a password session is enough.
  MCIMD_CHECK(call("load " + std::string(what), [&] {
    return Esys_Load(esys.get(), parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &object);
  }));
  return Object(*self, object, /*flush_on_destroy=*/true);
}

Result<std::size_t> Context::Impl::input_buffer_size() {
  if (max_buffer) return *max_buffer;
  constexpr std::size_t kStructLimit = sizeof(TPM2B_MAX_BUFFER::buffer);
  EsysPtr<TPMS_CAPABILITY_DATA> caps;
  TPMI_YES_NO more = TPM2_NO;
  MCIMD_CHECK(call("query the TPM's input buffer size", [&] {
    return Esys_GetCapability(esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                              TPM2_PT_INPUT_BUFFER, 1, &more, OutPtr(caps));
  }));
  std::size_t size = kStructLimit;
  const auto& props = caps->data.tpmProperties;
  if (props.count > 0 && props.tpmProperty[0].property == TPM2_PT_INPUT_BUFFER)
    size = std::min<std::size_t>(size, props.tpmProperty[0].value);
  max_buffer = size;
  return size;
}

}  // namespace mcimd::tpm
