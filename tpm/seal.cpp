// Policy-bound secrets: sealed KEYEDHASH objects (OPc), the store's HMAC key, and AES-128 key
// objects (K), whose Milenage block calls run inside the TPM through TPM2_EncryptDecrypt2.
#include <algorithm>
#include <cstring>
#include <utility>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

// TPM 2.0 Part 2, MAX_SYM_DATA: the most a KEYEDHASH object can hold as sealed data.
constexpr std::size_t kMaxSealedSize = 128;
constexpr std::size_t kAesBlock = 16;
// Part 2 §10.4.8 TPM2B_MAX_BUFFER on PC Client TPMs (MAX_DIGEST_BUFFER): 1024 bytes.
constexpr std::size_t kMaxHmacInput = 1024;

// Wipes a structure that held a secret when the scope ends, however it ends.
template <class T>
class WipeOnExit {
 public:
  explicit WipeOnExit(T& value) : value_(value) {}
  ~WipeOnExit() { wipe(&value_, sizeof value_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  T& value_;
};

// Attributes every policy-bound object shares: never leaves this TPM or this parent; the user role
// is only reachable through the policy (userWithAuth clear), and so is the admin role.
TPMA_OBJECT policy_bound_attributes(const SealOptions& options) {
  TPMA_OBJECT a = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_ADMINWITHPOLICY;
  if (options.no_da) a |= TPMA_OBJECT_NODA;
  return a;
}

Result<TPM2B_DIGEST> auth_policy_of(const SealOptions& options) {
  if (options.auth_policy.size() != 32)
    return fail(Code::InvalidArgument, "An authPolicy is a SHA-256 digest (32 bytes), not " +
                                           std::to_string(options.auth_policy.size()) + " bytes");
  TPM2B_DIGEST d{};
  d.size = 32;
  std::memcpy(d.buffer, options.auth_policy.data(), 32);
  return d;
}

}  // namespace

// --- sealed data ---------------------------------------------------------------------------------------
Result<KeyBlob> Context::seal(std::span<const uint8_t> secret, const SealOptions& options) {
  if (secret.empty() || secret.size() > kMaxSealedSize)
    return fail(Code::InvalidArgument,
                "A sealed secret must be 1 to 128 bytes, not " + std::to_string(secret.size()));
  TPM2B_PUBLIC templ{};
  auto& a = templ.publicArea;
  a.type = TPM2_ALG_KEYEDHASH;
  a.nameAlg = TPM2_ALG_SHA256;
  a.objectAttributes = policy_bound_attributes(options);  // sensitiveDataOrigin clear: we supply the data
  a.authPolicy = MCIMD_TRY(auth_policy_of(options));
  a.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;  // a data blob, not an HMAC key

  TPM2B_SENSITIVE_CREATE sensitive{};
  WipeOnExit wipe_sensitive(sensitive);
  sensitive.sensitive.data.size = static_cast<uint16_t>(secret.size());
  std::memcpy(sensitive.sensitive.data.buffer, secret.data(), secret.size());
  return impl_->create_under_srk(sensitive, templ, "seal the secret");
}

Result<SecureBytes> Context::unseal(const KeyBlob& blob, const ApprovedPolicy& policy) {
  auto& impl = *impl_;
  Object item = MCIMD_TRY(impl.load(blob, "the sealed object"));
  EsysSecretPtr<TPM2B_SENSITIVE_DATA> data;
  MCIMD_CHECK(impl.with_policy(policy, "unseal", [&](ESYS_TR session) {
    // TPM2_Unseal has no command parameter; its response (the secret) travels encrypted.
    TSS2_RC rc = Esys_TRSess_SetAttributes(impl.esys.get(), session,
                                           TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, 0xFF);
    if (rc != TSS2_RC_SUCCESS) return rc;
    return Esys_Unseal(impl.esys.get(), item.handle(), session, ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(data));
  }));
  return SecureBytes(data->buffer, data->buffer + data->size);
}

// --- HMAC keys ------------------------------------------------------------------------------------------
Result<KeyBlob> Context::create_hmac_key(const SealOptions& options) {
  TPM2B_PUBLIC templ{};
  auto& a = templ.publicArea;
  a.type = TPM2_ALG_KEYEDHASH;
  a.nameAlg = TPM2_ALG_SHA256;
  // sensitiveDataOrigin: the TPM draws the key; sign: TPM2_HMAC needs it (Part 3 §15.5).
  a.objectAttributes = policy_bound_attributes(options) | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT;
  a.authPolicy = MCIMD_TRY(auth_policy_of(options));
  a.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
  a.parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
  TPM2B_SENSITIVE_CREATE sensitive{};
  return impl_->create_under_srk(sensitive, templ, "create the HMAC key");
}

Result<SecureBytes> Context::hmac(const KeyBlob& key, std::span<const uint8_t> data, const ApprovedPolicy& policy) {
  if (data.size() > kMaxHmacInput)
    return fail(Code::InvalidArgument, "At most " + std::to_string(kMaxHmacInput) + " bytes are HMACed in one call");
  auto& impl = *impl_;
  Object loaded = MCIMD_TRY(impl.load(key, "the HMAC key"));
  TPM2B_MAX_BUFFER in{};
  in.size = static_cast<uint16_t>(data.size());
  std::memcpy(in.buffer, data.data(), data.size());
  EsysSecretPtr<TPM2B_DIGEST> out;
  MCIMD_CHECK(impl.with_policy(policy, "compute an HMAC with the TPM-held key", [&](ESYS_TR session) {
    // The result is the secret: it travels encrypted.
    TSS2_RC rc = Esys_TRSess_SetAttributes(impl.esys.get(), session,
                                           TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, 0xFF);
    if (rc != TSS2_RC_SUCCESS) return rc;
    return Esys_HMAC(impl.esys.get(), loaded.handle(), session, ESYS_TR_NONE, ESYS_TR_NONE, &in, TPM2_ALG_SHA256,
                     OutPtr(out));
  }));
  return SecureBytes(out->buffer, out->buffer + out->size);
}

// --- AES-128 key objects ----------------------------------------------------------------------------------
Result<KeyBlob> Context::create_aes_key(std::span<const uint8_t> key, const SealOptions& options) {
  if (key.size() != 16)
    return fail(Code::InvalidArgument, "An AES-128 key is 16 bytes, not " + std::to_string(key.size()));
  TPM2B_PUBLIC templ{};
  auto& a = templ.publicArea;
  a.type = TPM2_ALG_SYMCIPHER;
  a.nameAlg = TPM2_ALG_SHA256;
  // For a symmetric key, sign means encrypt (Part 2 §8.3 TPMA_OBJECT). Decrypt stays clear:
  // Milenage only ever encrypts (TS 35.206 §4.1), so K can never be used to decrypt.
  a.objectAttributes = policy_bound_attributes(options) | TPMA_OBJECT_SIGN_ENCRYPT;
  a.authPolicy = MCIMD_TRY(auth_policy_of(options));
  a.parameters.symDetail.sym.algorithm = TPM2_ALG_AES;
  a.parameters.symDetail.sym.keyBits.aes = 128;
  // Bound to ECB: all Milenage needs (TS 35.206 uses E_K on single blocks), nothing more.
  a.parameters.symDetail.sym.mode.aes = TPM2_ALG_ECB;

  TPM2B_SENSITIVE_CREATE sensitive{};
  WipeOnExit wipe_sensitive(sensitive);
  sensitive.sensitive.data.size = static_cast<uint16_t>(key.size());
  std::memcpy(sensitive.sensitive.data.buffer, key.data(), key.size());
  return impl_->create_under_srk(sensitive, templ, "create the AES key object");
}

Result<Context::AesKey> Context::load_aes_key(const KeyBlob& blob) {
  auto slot = std::make_unique<AesKey::Slot>();
  slot->key = MCIMD_TRY(impl_->load(blob, "the AES key object"));
  slot->blob = blob;
  impl_->aes_keys.insert(slot.get());
  return AesKey(this, std::move(slot));
}

Context::AesKey::AesKey(Context* ctx, std::unique_ptr<Slot> slot) : ctx_(ctx), slot_(std::move(slot)) {}

Context::AesKey::AesKey(AesKey&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)), slot_(std::move(o.slot_)) {}

Context::AesKey& Context::AesKey::operator=(AesKey&& o) noexcept {
  if (this == &o) return *this;
  if (ctx_ && slot_) ctx_->impl_->aes_keys.erase(slot_.get());
  slot_.reset();  // flushes the key this one held
  ctx_ = std::exchange(o.ctx_, nullptr);
  slot_ = std::move(o.slot_);
  return *this;
}

Context::AesKey::~AesKey() {
  if (ctx_ && slot_) ctx_->impl_->aes_keys.erase(slot_.get());
}

void Context::AesKey::evict() noexcept {
  if (slot_ && !slot_->in_use) slot_->key = Object();
}

Result<std::vector<std::array<uint8_t, 16>>> Context::AesKey::encrypt_ecb(
    std::span<const std::array<uint8_t, 16>> blocks, const ApprovedPolicy& policy) {
  std::vector<std::array<uint8_t, 16>> out;
  if (blocks.empty()) return out;
  if (!ctx_ || !slot_) return fail(Code::Internal, "AES key used after it was moved from");
  auto& impl = *ctx_->impl_;
  Object& key = slot_->key;
  // While this call runs, a full TPM never takes K's slot away from under the command using it.
  struct InUse {
    bool& flag;
    explicit InUse(bool& f) : flag(f) { flag = true; }
    ~InUse() { flag = false; }
  } in_use(slot_->in_use);
  const std::size_t per_call = std::max<std::size_t>(1, MCIMD_TRY(impl.input_buffer_size()) / kAesBlock);
  out.reserve(blocks.size());

  for (std::size_t first = 0; first < blocks.size(); first += per_call) {
    const std::size_t count = std::min(per_call, blocks.size() - first);
    TPM2B_MAX_BUFFER in{};
    WipeOnExit wipe_in(in);
    in.size = static_cast<uint16_t>(count * kAesBlock);
    std::memcpy(in.buffer, blocks[first].data(), in.size);
    EsysSecretPtr<TPM2B_MAX_BUFFER> result;
    for (int reload = 0;; ++reload) {
      if (!key) key = MCIMD_TRY(impl.load(slot_->blob, "the AES key object"));
      auto done = impl.with_policy(policy, "encrypt with the AES key", [&](ESYS_TR session) {
        // inData is the first command parameter and outData the first response one: both encrypted.
        TSS2_RC rc = Esys_TRSess_SetAttributes(
            impl.esys.get(), session, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, 0xFF);
        if (rc != TSS2_RC_SUCCESS) return rc;
        TPM2B_IV iv{};  // Part 3 §15.2 TPM2_EncryptDecrypt: ECB takes an empty IV
        return Esys_EncryptDecrypt2(impl.esys.get(), key.handle(), session, ESYS_TR_NONE, ESYS_TR_NONE, &in, TPM2_NO,
                                    TPM2_ALG_ECB, &iv, OutPtr(result), nullptr);
      });
      if (done) break;
      // Another client (a TPM without a resource manager) or a TPM reset flushed K: load it again.
      if (reload > 0 || classify_rc(done.error().tss2_rc()) != RcKind::Stale) return tl::unexpected(done.error());
      log::debug("The loaded AES key is gone from the TPM; loading it again");
      impl.forget(key);
    }
    if (result->size != in.size)
      return fail(Code::TpmFailure, "Failed to encrypt with the AES key: the TPM returned " +
                                        std::to_string(result->size) + " bytes for " + std::to_string(in.size));
    for (std::size_t i = 0; i < count; ++i) {
      std::array<uint8_t, 16> block;
      std::memcpy(block.data(), result->buffer + i * kAesBlock, kAesBlock);
      out.push_back(block);
    }
  }
  return out;
}

Status Context::check_encrypt_decrypt_support() {
  auto& impl = *impl_;
  auto query = [&](TPM2_CAP cap, uint32_t property, const std::string& what) -> Result<EsysPtr<TPMS_CAPABILITY_DATA>> {
    EsysPtr<TPMS_CAPABILITY_DATA> data;
    TPMI_YES_NO more = TPM2_NO;
    MCIMD_CHECK(impl.call("query " + what, [&] {
      return Esys_GetCapability(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, cap, property, 1, &more,
                                OutPtr(data));
    }));
    return data;
  };
  auto commands = MCIMD_TRY(query(TPM2_CAP_COMMANDS, TPM2_CC_EncryptDecrypt2, "TPM2_EncryptDecrypt2 support"));
  const auto& cc = commands->data.command;
  if (cc.count == 0 || (cc.commandAttributes[0] & TPMA_CC_COMMANDINDEX_MASK) != (TPM2_CC_EncryptDecrypt2 & 0xFFFF))
    return fail(Code::Unsupported, "The TPM does not implement TPM2_EncryptDecrypt2");
  for (auto [alg, name] : {std::pair{TPM2_ALG_AES, "AES"}, std::pair{TPM2_ALG_ECB, "ECB mode"}}) {
    auto algs = MCIMD_TRY(query(TPM2_CAP_ALGS, alg, std::string(name) + " support"));
    const auto& list = algs->data.algorithms;
    if (list.count == 0 || list.algProperties[0].alg != alg)
      return fail(Code::Unsupported, std::string("The TPM does not implement ") + name);
  }
  return {};
}

}  // namespace mcimd::tpm
