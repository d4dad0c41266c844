// Secrets under PolicyPCR: sealed KEYEDHASH objects (OPc and friends) and AES-128 key objects (K),
// whose Milenage block calls run inside the TPM through TPM2_EncryptDecrypt2.
#include <algorithm>
#include <cstring>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

// TPM 2.0 Part 2, MAX_SYM_DATA: the most a KEYEDHASH object can hold as sealed data.
constexpr std::size_t kMaxSealedSize = 128;
constexpr std::size_t kAesBlock = 16;

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

// Attributes both object kinds share: never leaves this TPM or this parent; the user role is
// only reachable through the policy (userWithAuth clear), and so is the admin role.
TPMA_OBJECT policy_bound_attributes(const SealOptions& options) {
  TPMA_OBJECT a = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_ADMINWITHPOLICY;
  if (options.no_da) a |= TPMA_OBJECT_NODA;
  return a;
}

}  // namespace

// --- sealed data ---------------------------------------------------------------------------------------
Result<KeyBlob> Context::seal(std::span<const uint8_t> secret, const SealOptions& options) {
  if (secret.empty() || secret.size() > kMaxSealedSize)
    return fail(Code::InvalidArgument,
                "A sealed secret must be 1 to 128 bytes, not " + std::to_string(secret.size()));
  auto& impl = *impl_;
  auto policy = MCIMD_TRY(impl.trial_policy_digest(options.pcrs));

  TPM2B_PUBLIC templ{};
  auto& a = templ.publicArea;
  a.type = TPM2_ALG_KEYEDHASH;
  a.nameAlg = TPM2_ALG_SHA256;
  a.objectAttributes = policy_bound_attributes(options);  // sensitiveDataOrigin clear: we supply the data
  a.authPolicy = policy;
  a.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;  // a data blob, not an HMAC key

  TPM2B_SENSITIVE_CREATE sensitive{};
  WipeOnExit wipe_sensitive(sensitive);
  sensitive.sensitive.data.size = static_cast<uint16_t>(secret.size());
  std::memcpy(sensitive.sensitive.data.buffer, secret.data(), secret.size());
  return impl.create_under_srk(sensitive, templ, "seal the secret");
}

Result<SecureBytes> Context::unseal(const KeyBlob& blob, const PcrSelection& pcrs) {
  auto& impl = *impl_;
  Object item = MCIMD_TRY(impl.load(blob, "the sealed object"));
  Object session = MCIMD_TRY(impl.start_salted_session(TPM2_SE_POLICY));
  return impl.redo_on_pcr_change([&](bool restart) -> Result<SecureBytes> {
    if (restart)
      MCIMD_CHECK(impl.call("restart the policy session", [&] {
        return Esys_PolicyRestart(impl.esys.get(), session.handle(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
      }));
    MCIMD_CHECK(impl.policy_pcr(session.handle(), pcrs));
    // TPM2_Unseal has no command parameter; its response (the secret) travels encrypted.
    MCIMD_CHECK(impl.set_session_attributes(session.handle(), TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION));
    EsysSecretPtr<TPM2B_SENSITIVE_DATA> data;
    MCIMD_CHECK(impl.call("unseal", [&] {
      return Esys_Unseal(impl.esys.get(), item.handle(), session.handle(), ESYS_TR_NONE, ESYS_TR_NONE, OutPtr(data));
    }));
    return SecureBytes(data->buffer, data->buffer + data->size);
  });
}

// --- AES-128 key objects ----------------------------------------------------------------------------------
Result<KeyBlob> Context::create_aes_key(std::span<const uint8_t> key, const SealOptions& options) {
  if (key.size() != 16)
    return fail(Code::InvalidArgument, "An AES-128 key is 16 bytes, not " + std::to_string(key.size()));
  auto& impl = *impl_;
  auto policy = MCIMD_TRY(impl.trial_policy_digest(options.pcrs));

  TPM2B_PUBLIC templ{};
  auto& a = templ.publicArea;
  a.type = TPM2_ALG_SYMCIPHER;
  a.nameAlg = TPM2_ALG_SHA256;
  // For a symmetric key, sign means encrypt (Part 2, TPMA_OBJECT): both directions allowed.
  a.objectAttributes = policy_bound_attributes(options) | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT;
  a.authPolicy = policy;
  a.parameters.symDetail.sym.algorithm = TPM2_ALG_AES;
  a.parameters.symDetail.sym.keyBits.aes = 128;
  // Bound to ECB: all Milenage needs (TS 35.206 uses E_K on single blocks), nothing more.
  a.parameters.symDetail.sym.mode.aes = TPM2_ALG_ECB;

  TPM2B_SENSITIVE_CREATE sensitive{};
  WipeOnExit wipe_sensitive(sensitive);
  sensitive.sensitive.data.size = static_cast<uint16_t>(key.size());
  std::memcpy(sensitive.sensitive.data.buffer, key.data(), key.size());
  return impl.create_under_srk(sensitive, templ, "create the AES key object");
}

Result<Context::AesKey> Context::load_aes_key(const KeyBlob& blob, const PcrSelection& pcrs) {
  auto& impl = *impl_;
  if (!pcrs.pcrs.empty()) MCIMD_TRY(to_tpml(pcrs));  // report a bad selection now, not at first use
  Object key = MCIMD_TRY(impl.load(blob, "the AES key object"));
  Object session = MCIMD_TRY(impl.start_salted_session(TPM2_SE_POLICY));
  return AesKey(this, std::move(key), std::move(session), pcrs);
}

Context::AesKey::AesKey(Context* ctx, Object key, Object session, PcrSelection pcrs)
    : ctx_(ctx), key_(std::move(key)), session_(std::move(session)), pcrs_(std::move(pcrs)) {}
Context::AesKey::AesKey(AesKey&&) noexcept = default;
Context::AesKey& Context::AesKey::operator=(AesKey&&) noexcept = default;
Context::AesKey::~AesKey() = default;

Result<std::vector<std::array<uint8_t, 16>>> Context::AesKey::encrypt_ecb(
    std::span<const std::array<uint8_t, 16>> blocks) {
  std::vector<std::array<uint8_t, 16>> out;
  if (blocks.empty()) return out;
  if (!key_ || !session_) return fail(Code::Internal, "AES key used after it was moved from");
  auto& impl = *ctx_->impl_;
  const std::size_t per_call = std::max<std::size_t>(1, MCIMD_TRY(impl.input_buffer_size()) / kAesBlock);
  out.reserve(blocks.size());

  for (std::size_t first = 0; first < blocks.size(); first += per_call) {
    const std::size_t count = std::min(per_call, blocks.size() - first);
    TPM2B_MAX_BUFFER in{};
    WipeOnExit wipe_in(in);
    in.size = static_cast<uint16_t>(count * kAesBlock);
    std::memcpy(in.buffer, blocks[first].data(), in.size);
    EsysSecretPtr<TPM2B_MAX_BUFFER> result;

    MCIMD_CHECK(impl.redo_on_pcr_change([&](bool) -> Status {
      // A policy session is reset only by a successful use; after any failure since the last
      // PolicyPCR it may still hold that PolicyPCR, and a second one would not match.
      if (policy_dirty_)
        MCIMD_CHECK(impl.call("restart the policy session", [&] {
          return Esys_PolicyRestart(impl.esys.get(), session_.handle(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
        }));
      policy_dirty_ = true;
      MCIMD_CHECK(impl.policy_pcr(session_.handle(), pcrs_));
      // inData is the first command parameter and outData the first response one: both encrypted.
      MCIMD_CHECK(impl.set_session_attributes(
          session_.handle(), TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION));
      TPM2B_IV iv{};  // Part 3 TPM2_EncryptDecrypt: ECB takes an empty IV
      MCIMD_CHECK(impl.call("encrypt with the AES key", [&] {
        return Esys_EncryptDecrypt2(impl.esys.get(), key_.handle(), session_.handle(), ESYS_TR_NONE, ESYS_TR_NONE,
                                    &in, TPM2_NO, TPM2_ALG_ECB, &iv, OutPtr(result), nullptr);
      }));
      policy_dirty_ = false;  // the successful use reset the session's policy digest
      return {};
    }));
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
