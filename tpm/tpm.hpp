#pragma once
// The TPM 2.0 layer over ESAPI. Everything the rest of mcimd asks of a TPM goes through here;
// nothing else in the project includes <tss2/...>. Blobs leave this layer marshaled (tss2-mu)
// so any TPM tool can read them.
//
// A Context is used by one thread at a time (the daemon's TPM worker). Objects and AesKeys hold
// a pointer to their Context and must be destroyed before it. After a transport failure (the TPM
// or its socket went away) every call fails with TpmFailure asking to reopen the context.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace mcimd::tpm {

inline constexpr uint32_t kSrkHandle = 0x81000001;  // TCG provisioning guidance; systemd uses it too

// PCR bank + indices, e.g. sha256:7,14.
struct PcrSelection {
  std::string bank = "sha256";  // sha1 | sha256 | sha384 | sha512
  std::vector<unsigned> pcrs;   // 0–23, ascending, no duplicates
  bool operator==(const PcrSelection&) const = default;
};
// "sha256:0,7" → PcrSelection (indices sorted). InvalidArgument naming the problem for: a missing
// "BANK:" prefix, an unknown bank, an empty list, a non-number, an index above 23, a duplicate.
[[nodiscard]] Result<PcrSelection> parse_pcr_selection(std::string_view text);
// The inverse: "sha256:0,7".
std::string to_string(const PcrSelection& sel);

struct PcrValue {
  unsigned index;
  Bytes digest;
};

struct RetryPolicy {
  // Attempts per command on TPM_RC_RETRY/YIELDED/TESTING (after ESAPI's own resubmissions), and
  // per policy + command sequence on TPM_RC_PCR_CHANGED. At least 1.
  unsigned max_attempts = 8;
  std::chrono::milliseconds backoff{5};  // doubled each attempt, capped at one second
  // First pause after TPM_RC_NV_RATE / TPM_RC_NV_UNAVAILABLE (then doubled, capped at one second).
  std::chrono::milliseconds nv_rate_backoff{100};
};

// A TPM object blob as stored on disk: marshaled TPM2B_PUBLIC and TPM2B_PRIVATE.
struct KeyBlob {
  Bytes public_area;
  Bytes private_area;
};

// A TPM2 duplication blob made for this TPM's SRK (TPM 2.0 Part 1 §23.3.2, outer wrapper only),
// marshaled: what an operator sends (attestation::make_aes_key_import / make_sealed_import).
struct ImportBlob {
  Bytes public_area;  // TPM2B_PUBLIC of the object (fixedTPM and fixedParent clear)
  Bytes duplicate;    // TPM2B_PRIVATE
  Bytes seed;         // TPM2B_ENCRYPTED_SECRET: the seed, encrypted to the SRK
};

// How a secret object's authPolicy is set. The digest is computed by the caller (for mcimd:
// protocol::authorize_policy_digest, PolicyAuthorize naming the policy authority), so that the
// TPM layer needs no knowledge of the policy model and the operator side computes the same.
struct SealOptions {
  Bytes auth_policy;  // SHA-256 policy digest, 32 bytes
  bool no_da = true;  // power cuts must not lock the TPM out
};

// A platform state approved by the policy authority, ready to satisfy an object whose authPolicy
// is PolicyAuthorize(authority, policy_ref): each use runs TPM2_PolicyPCR(pcr_digest, pcrs) then
// TPM2_PolicyAuthorize(approved_policy, policy_ref, authority_name, ticket) in the one kept
// policy session (TPM 2.0 Part 3 §23.7, §23.16).
// A deletion counter the object's policy binds after PolicyAuthorize: TPM2_PolicyNV(counter at
// nv_index == value) (protocol::DeletionBinding has the model).
struct NvBinding {
  uint32_t nv_index = 0;
  uint64_t value = 0;
  bool operator==(const NvBinding&) const = default;
};

struct ApprovedPolicy {
  PcrSelection pcrs;
  Bytes pcr_digest;       // SHA-256 over the approved values in selection order
  Bytes approved_policy;  // the PolicyPCR digest the authority signed
  Bytes policy_ref;
  Bytes authority_name;   // TPM name of the authority key
  Bytes ticket;           // marshaled TPMT_TK_VERIFIED from Context::verify_signature
  // Set for a profile's objects bound to a deletion counter: PolicyNV follows PolicyAuthorize.
  std::optional<NvBinding> deletion;
};

// A TPM public area's properties the daemon checks before it trusts a blob from disk.
struct PublicInfo {
  enum class Kind { SealedData, HmacKey, AesKey, Other } kind = Kind::Other;
  bool fixed_tpm = false, fixed_parent = false, sensitive_data_origin = false, user_with_auth = false,
       admin_with_policy = false, no_da = false, decrypt = false, sign_encrypt = false;
  Bytes auth_policy;
  Bytes name;
};
// InvalidArgument for a malformed TPM2B_PUBLIC.
[[nodiscard]] Result<PublicInfo> describe_public(std::span<const uint8_t> public_area);

// The TPM's clock state (TPM2_ReadClock, Part 3 §29.1). Not authenticated: a hint.
struct ClockState {
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
};

// The anti-rollback counter: an NV index only the holder of `auth` can read or advance.
struct CounterSpec {
  uint32_t index = 0;   // 0x01xxxxxx
  SecureBytes auth;     // its authValue, 1–32 bytes
};

// Commands sent to the TPM, counted at the transport (so ESAPI's own resubmissions and the
// ReadPublic behind a handle lookup count too), for benchmarks and tests: two TPM2_EncryptDecrypt2
// per AKA is a contract.
struct CommandStats {
  uint64_t commands = 0;
  uint64_t encrypt_decrypt = 0;  // TPM2_EncryptDecrypt2 commands
};

// --- attestation (tpm/attest.cpp) -------------------------------------------------------------
// Endorsement key kinds from the TCG EK Credential Profile 2.0 §B.3.3 default templates.
enum class EkType {
  Rsa2048,  // template L-1
  EccP256,  // template L-2
};
std::string_view to_string(EkType type);
// TCG EK Credential Profile 2.0 §2.2.1.4: NV indices of the EK certificates for the L-1/L-2 EKs.
inline constexpr uint32_t kEkCertificateRsaIndex = 0x01C00002;
inline constexpr uint32_t kEkCertificateEccIndex = 0x01C0000A;

// What TPM2_MakeCredential produced for this TPM's EK and an AK's name, marshaled.
struct CredentialChallenge {
  Bytes credential_blob;   // TPM2B_ID_OBJECT
  Bytes encrypted_secret;  // TPM2B_ENCRYPTED_SECRET
};

// A TPM2_Quote as tpm2_quote writes it: -m and -s; also a TPM2_Certify as tpm2_certify writes it
// (-o and -s).
struct Quote {
  Bytes message;    // marshaled TPMS_ATTEST (the attestationData of the TPM2B_ATTEST)
  Bytes signature;  // marshaled TPMT_SIGNATURE
};

// The TPM name of an object from its marshaled TPM2B_PUBLIC: nameAlg (2 octets, big-endian) ‖
// H_nameAlg(marshaled TPMT_PUBLIC) (TPM 2.0 Part 1 §16). InvalidArgument for a malformed public
// area or an unsupported nameAlg.
[[nodiscard]] Result<Bytes> object_name(std::span<const uint8_t> public_area);

class Context;
namespace seam {
struct InjectedResponse;
void inject_response(Context& ctx, const InjectedResponse& injection);
}  // namespace seam

// Move-only owner of an ESAPI handle (ESYS_TR). A transient object or session is flushed from
// the TPM on destruction unless released; other handles (persistent objects, NV indices) only
// have their ESAPI metadata closed. Flush failures are logged at debug and ignored.
class Object {
 public:
  Object() = default;
  // Takes over `esys_tr`, which this library obtained from ESAPI on `ctx`.
  Object(Context& ctx, uint32_t esys_tr, bool flush_on_destroy);
  Object(Object&& o) noexcept;
  Object& operator=(Object&& o) noexcept;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  ~Object();
  uint32_t handle() const { return tr_; }
  explicit operator bool() const { return ctx_ != nullptr; }
  // Stops the destructor from flushing or closing (objects handed elsewhere); the handle no
  // longer counts in live_handles().
  uint32_t release();

 private:
  void reset() noexcept;
  Context* ctx_ = nullptr;
  uint32_t tr_ = 0;
  bool flush_ = false;
};

struct ContextOptions {
  std::string tcti = "device:/dev/tpmrm0";  // tss2-tctildr "name:conf"; empty = tctildr's default search
  RetryPolicy retry;
};

class Context {
 public:
  // Opens the TCTI (tss2-tctildr string) and an ESAPI context. Sends no command yet.
  // TpmFailure with the decoded RC when the TCTI cannot be loaded or connected.
  [[nodiscard]] static Result<std::unique_ptr<Context>> open(const ContextOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The SRK at 0x81000001: used when present (it must be a restricted decryption key), otherwise
  // created from the TCG provisioning-guidance template (ECC NIST P-256, AES-128-CFB; RSA-2048
  // when the TPM lacks P-256) in the owner hierarchy (empty owner auth) and persisted.
  // Returns its marshaled TPM2B_PUBLIC so the caller can pin it. Cached per Context.
  [[nodiscard]] Result<Bytes> srk_public();

  // --- signed PCR policies (PolicyAuthorize) ----------------------------------------------
  // TPM2_LoadExternal of the authority's public key (marshaled TPM2B_PUBLIC, public only, owner
  // hierarchy so the ticket is a real one), TPM2_VerifySignature of `signature` (marshaled
  // TPMT_SIGNATURE) over `digest`, flush. Returns the marshaled TPMT_TK_VERIFIED that
  // TPM2_PolicyAuthorize takes. NotAuthorized when the TPM refuses the signature; InvalidArgument
  // for malformed inputs. Three commands.
  [[nodiscard]] Result<Bytes> verify_signature(std::span<const uint8_t> authority_public,
                                               std::span<const uint8_t> digest, std::span<const uint8_t> signature);

  // --- sealed data (KEYEDHASH) ----------------------------------------------------------------
  // Seals 1–128 bytes under the SRK: fixedTPM|fixedParent, userWithAuth clear, adminWithPolicy,
  // authPolicy from options. The secret travels to the TPM encrypted (salted session, AES-128-CFB).
  [[nodiscard]] Result<KeyBlob> seal(std::span<const uint8_t> secret, const SealOptions& options);
  // Loads the blob, satisfies `policy` in the kept policy session and unseals with response
  // encryption, flushes. PlatformStateChanged when the PCRs differ from the approved values (or
  // the object is bound to another policy); InvalidArgument for a malformed blob.
  [[nodiscard]] Result<SecureBytes> unseal(const KeyBlob& blob, const ApprovedPolicy& policy);

  // --- HMAC keys (the store's key) -------------------------------------------------------------
  // Creates a KEYEDHASH HMAC-SHA-256 signing key under the SRK whose secret the TPM generates
  // (sensitiveDataOrigin): nobody, mcimd included, ever learns it. Attributes as for seal.
  [[nodiscard]] Result<KeyBlob> create_hmac_key(const SealOptions& options);
  // Loads the key, satisfies `policy`, TPM2_HMAC(data) with the result encrypted on its way
  // back, flushes. data: at most 1024 bytes.
  [[nodiscard]] Result<SecureBytes> hmac(const KeyBlob& key, std::span<const uint8_t> data, const ApprovedPolicy& policy);

  // --- AES-128 key objects (K) --------------------------------------------------------------
  // Imports a 16-byte key as a TPM AES-128 object: ECB only, encrypt only (sign|encrypt set,
  // decrypt clear: Milenage never decrypts), fixedTPM|fixedParent, authPolicy from options. The key
  // travels encrypted; the host never needs it again.
  [[nodiscard]] Result<KeyBlob> create_aes_key(std::span<const uint8_t> key, const SealOptions& options);

  // A loaded AES key. It keeps its blob, so that a key flushed by someone else (another client
  // of a TPM without a resource manager, a TPM reset), or given up to free a slot for another
  // object when the TPM is full, is loaded again transparently.
  class AesKey {
   public:
    // PolicyPCR + PolicyAuthorize in the kept policy session, then one TPM2_EncryptDecrypt2
    // (ECB, encrypt) over all blocks with parameter encryption both ways; split only when the
    // TPM's input buffer is smaller than the request. Three commands in steady state.
    // PlatformStateChanged after a change of an approved PCR.
    [[nodiscard]] Result<std::vector<std::array<uint8_t, 16>>> encrypt_ecb(
        std::span<const std::array<uint8_t, 16>> blocks, const ApprovedPolicy& policy);
    AesKey(AesKey&&) noexcept;
    AesKey& operator=(AesKey&&) noexcept;
    ~AesKey();
    // Flushes the key to free its slot (unless a command is using it); the next use loads it again.
    void evict() noexcept;

    // The loaded key and its blob, at a stable address the Context keeps a pointer to.
    struct Slot;

   private:
    friend class Context;
    AesKey(Context* ctx, std::unique_ptr<Slot> slot);
    Context* ctx_;
    std::unique_ptr<Slot> slot_;
  };
  [[nodiscard]] Result<AesKey> load_aes_key(const KeyBlob& blob);
  // Unsupported when the TPM lacks TPM2_EncryptDecrypt2, AES or ECB mode.
  [[nodiscard]] Status check_encrypt_decrypt_support();

  // --- imported objects (tpm/import.cpp) --------------------------------------------------------
  // TPM2_Import of an operator's duplication blob under the SRK (Part 3 §13.3; no inner wrapper:
  // encryptionKey empty, symmetricAlg TPM_ALG_NULL). Returns the public area as given with the
  // TPM's outPrivate: a KeyBlob that load_aes_key and unseal take like create_aes_key's and seal's.
  // One command (with the SRK looked up); the TPM keeps nothing loaded.
  // Before anything is sent, InvalidArgument naming each problem unless the public area is one
  // mcimd would use: nameAlg SHA-256; an AES-128 ECB key with sign (encrypt) set, or a KEYEDHASH
  // data object (scheme NULL, sign clear); adminWithPolicy and noDA set; decrypt, userWithAuth and
  // every other attribute clear; a 32-byte authPolicy. So a package never plants a key that
  // decrypts or that a password unlocks. InvalidArgument too for a malformed structure or an empty
  // duplicate or seed (an unencrypted import).
  // TpmMismatch, naming what failed, when the TPM finds the blob not made for this SRK or altered:
  // the outer HMAC over the duplicate and the object's name does not verify (TPM_RC_INTEGRITY), or
  // the seed or duplicate does not decrypt (TPM_RC_VALUE, TPM_RC_ECC_POINT, TPM_RC_INSUFFICIENT,
  // TPM_RC_NO_RESULT, or a code for the duplicate or inSymSeed parameter).
  [[nodiscard]] Result<KeyBlob> import_object(const ImportBlob& blob);

  // --- NV monotonic counter (anti-rollback) -------------------------------------------------
  // Defines the counter in the owner hierarchy (empty owner auth): TPM_NT_COUNTER, ORDERLY (an
  // increment costs no NV write, except every MAX_ORDERLY_COUNT + 1-th; after an unclean shutdown
  // the TPM moves it forward, never back), AUTHREAD|AUTHWRITE with spec.auth (sent encrypted), NO_DA.
  // AlreadyExists when the index is defined.
  [[nodiscard]] Status counter_define(const CounterSpec& spec);
  // Owner hierarchy, empty owner auth. NotFound when the index is not defined.
  [[nodiscard]] Status counter_undefine(uint32_t index);
  // Reads and increments run in a kept HMAC session keyed by spec.auth, so the TPM's answer is
  // authenticated: an interposer on the bus can neither fake a value nor a success. The value is
  // cached while that session lives (a TPM reset, the only time an orderly counter moves on its
  // own, ends the session), so an increment in steady state is one command.
  // NotFound when the index is not defined; InvalidState when it is not such a counter;
  // NotAuthorized when spec.auth is not its authValue. A counter that was never incremented is
  // incremented once first (it has no value before).
  [[nodiscard]] Result<uint64_t> counter_read(const CounterSpec& spec);
  // Increments and returns the new value.
  [[nodiscard]] Result<uint64_t> counter_increment(const CounterSpec& spec);

  // --- deletion counters (tpm/deletion.cpp) ---------------------------------------------------
  // A profile's deletion counter at `index` (owner hierarchy, empty owner auth; attributes
  // protocol::kDeletionCounterAttributes): defined when absent, incremented once when never
  // written, and its value returned. InvalidState when the index holds something else.
  // Reads and increments run in an SRK-salted HMAC session, so the TPM's answer is authenticated.
  [[nodiscard]] Result<uint64_t> deletion_counter_prepare(uint32_t index);
  // NotFound when not defined.
  [[nodiscard]] Result<uint64_t> deletion_counter_read(uint32_t index);
  // Increments (the deletion) and returns the new value. NotFound when not defined.
  [[nodiscard]] Result<uint64_t> deletion_counter_advance(uint32_t index);

  // TPM2_ReadClock.
  [[nodiscard]] Result<ClockState> read_clock();
  // TPMA_PERMANENT ownerAuthSet (TPM_PT_PERMANENT, Part 2 §8.6): false while the owner hierarchy
  // has its empty default authorization, with which any TPM user can undefine NV indices.
  [[nodiscard]] Result<bool> owner_auth_set();

  // --- PCRs ---------------------------------------------------------------------------------
  // Values in the selection's order. Unsupported when the bank is not allocated.
  [[nodiscard]] Result<std::vector<PcrValue>> pcr_read(const PcrSelection& sel);
  // InvalidArgument when the digest length does not match the bank or the PCR is above 23.
  [[nodiscard]] Status pcr_extend(unsigned pcr, std::string_view bank, std::span<const uint8_t> digest);

  // --- attestation (tpm/attest.cpp) -------------------------------------------------------
  // The EK (created as a transient primary in the endorsement hierarchy from the default
  // template, empty endorsement auth, flushed again) as marshaled TPM2B_PUBLIC: byte for byte
  // what `tpm2_createek -G rsa|ecc -u FILE` writes.
  [[nodiscard]] Result<Bytes> ek_public(EkType type);
  // The DER EK certificate from its NV index (kEkCertificate*Index), trailing padding after the
  // DER SEQUENCE removed. NotFound when the index is not defined.
  [[nodiscard]] Result<Bytes> ek_certificate(EkType type);

  // Creates an attestation key under the SRK: restricted ECC P-256 signing key, ECDSA/SHA-256,
  // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA, empty auth. The caller keeps the
  // blob (the TPM keeps nothing).
  [[nodiscard]] Result<KeyBlob> create_ak();
  // Loads an AK blob under the SRK. InvalidArgument for a malformed blob or a key that is not a
  // restricted signing key (a quote from an unrestricted key proves nothing).
  [[nodiscard]] Result<Object> load_ak(const KeyBlob& ak);

  // TPM2_ActivateCredential with the AK and the `ek` EK: returns the secret the challenge
  // protects. The EK's policy (PolicySecret(TPM_RH_ENDORSEMENT)) is satisfied in a policy
  // session; the AK is authorised in an SRK-salted HMAC session that also encrypts the released
  // secret on its way back. InvalidArgument for a malformed challenge, and (with the TPM's code
  // kept) for a challenge made for another EK or another AK name.
  [[nodiscard]] Result<SecureBytes> activate_credential(const KeyBlob& ak, EkType ek,
                                                        const CredentialChallenge& challenge);

  // TPM2_Quote with the AK's own scheme over `selections` (one entry per bank, at most 16
  // banks, each bank once, each with at least one PCR), nonce as qualifyingData (0–64 bytes).
  [[nodiscard]] Result<Quote> quote(const KeyBlob& ak, std::span<const uint8_t> nonce,
                                    std::span<const PcrSelection> selections);
  // TPM2_Certify of the SRK by the AK (Part 3 §18.2) with the AK's own scheme and qualifying_data
  // (0–64 bytes) as qualifyingData: proves to an operator that the SRK it is to make a package for
  // is in the TPM the AK is in. Returns the TPMS_ATTEST (type TPM_ST_ATTEST_CERTIFY) and the
  // TPMT_SIGNATURE. Three commands: load the AK, certify, flush the AK. InvalidArgument for an AK
  // blob load_ak refuses or oversized qualifying data.
  [[nodiscard]] Result<Quote> certify_srk(const KeyBlob& ak, std::span<const uint8_t> qualifying_data);

  // Every allocated PCR bank (TPM_CAP_PCRS) this library knows, each with those of `pcrs` the
  // bank has allocated; banks with none of them are left out. The no-argument form asks for
  // PCRs 0–23.
  [[nodiscard]] Result<std::vector<PcrSelection>> allocated_pcr_banks(std::span<const unsigned> pcrs);
  [[nodiscard]] Result<std::vector<PcrSelection>> allocated_pcr_banks();

  CommandStats stats() const;
  // False once the transport failed or an answer failed authentication: every later call fails
  // and the context must be replaced.
  bool usable() const;
  // Transient objects and sessions this context loaded and has not flushed: after every public
  // call, one per live AesKey plus the kept sessions (kept_sessions()).
  std::size_t live_handles() const;
  std::size_t kept_sessions() const;
  // Flushes the kept sessions (they are started again on next use).
  void drop_sessions();

  struct Impl;  // internal to tpm/ (tpm/impl.hpp)

 private:
  explicit Context(std::unique_ptr<Impl> impl);
  friend class Object;
  friend void seam::inject_response(Context& ctx, const seam::InjectedResponse& injection);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcimd::tpm
