#include "dbus-api/attestation_dbus.hpp"

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/bytes.hpp"
#include "dbus-api/bus_reply.hpp"
#include "dbus-api/names.hpp"

namespace mcimd::api {

namespace {

AttestationService& service_of(void* userdata) { return *static_cast<AttestationService*>(userdata); }

Result<std::string> read_ek_type(sd_bus_message* m) {
  const char* ek_type = nullptr;
  int r = sd_bus_message_read(m, "s", &ek_type);
  if (r < 0) return fail(Code::InvalidArgument, "Cannot read ek_type: " + errno_text(r));
  std::string_view type = ek_type;
  if (type != kEkTypeEcc && type != kEkTypeRsa)
    return fail(Code::InvalidArgument, "ek_type must be \"" + std::string(kEkTypeEcc) + "\" or \"" +
                                           std::string(kEkTypeRsa) + "\", got \"" + std::string(type) + "\"");
  return std::string(type);
}

Result<Bytes> read_nonce(sd_bus_message* m) {
  return read_bounded_bytes(m, "nonce", 1, kMaxAttestationNonceSize);
}

int append_bytes(sd_bus_message* reply, std::span<const uint8_t> data) {
  return sd_bus_message_append_array(reply, 'y', data.data(), data.size());
}

// Checks: ek_type is "ecc" or "rsa".
int method_get_endorsement(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "GetEndorsement", [&]() -> int {
    AttestationService& service = service_of(userdata);
    auto ek_type = read_ek_type(m);
    if (!ek_type) return set_error(ret_error, ek_type.error());
    return dispatch(m, "GetEndorsement", [&](const Pending& pending) {
      service.get_endorsement(
          *ek_type, answering<EndorsementData>(pending, [](sd_bus_message* reply, const EndorsementData& data) {
            int r = append_bytes(reply, data.ek_public);
            // No EK certificate in the TPM's NV: an empty array (a DER certificate never is).
            if (r >= 0) r = append_bytes(reply, data.ek_certificate.value_or(Bytes{}));
            if (r >= 0) r = append_bytes(reply, data.ak_public);
            return r;
          }));
    });
  });
}

// Checks: ek_type is "ecc" or "rsa"; credential_blob and encrypted_secret hold 1 to
// kMaxCredentialPartSize bytes each. The released secret is wiped from the sent reply.
int method_activate_credential(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ActivateCredential", [&]() -> int {
    AttestationService& service = service_of(userdata);
    auto ek_type = read_ek_type(m);
    if (!ek_type) return set_error(ret_error, ek_type.error());
    auto blob = read_bounded_bytes(m, "credential_blob", 1, kMaxCredentialPartSize);
    if (!blob) return set_error(ret_error, blob.error());
    auto secret = read_bounded_bytes(m, "encrypted_secret", 1, kMaxCredentialPartSize);
    if (!secret) return set_error(ret_error, secret.error());
    return dispatch(m, "ActivateCredential", [&](const Pending& pending) {
      service.activate_credential(
          *ek_type, std::move(*blob), std::move(*secret),
          answering<SecureBytes>(
              pending, [](sd_bus_message* reply, const SecureBytes& released) { return append_bytes(reply, released); },
              /*secret=*/true));
    });
  });
}

// Checks: the nonce holds 1 to kMaxAttestationNonceSize bytes.
int method_get_evidence(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "GetEvidence", [&]() -> int {
    AttestationService& service = service_of(userdata);
    auto nonce = read_nonce(m);
    if (!nonce) return set_error(ret_error, nonce.error());
    return dispatch(m, "GetEvidence", [&](const Pending& pending) {
      service.get_evidence(std::move(*nonce),
                           answering<std::string>(pending, [](sd_bus_message* reply, const std::string& evidence) {
                             return sd_bus_message_append(reply, "s", evidence.c_str());
                           }));
    });
  });
}

// Checks: signed_policy is 1 to kMaxSignedPolicySize bytes (sd-bus has already checked it is
// UTF-8 without NUL); the nonce holds 1 to kMaxAttestationNonceSize bytes. The policy's signature
// and content are the Service's to check.
int method_validate_platform(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) {
  return guarded(ret_error, "ValidatePlatform", [&]() -> int {
    AttestationService& service = service_of(userdata);
    const char* policy = nullptr;
    int r = sd_bus_message_read(m, "s", &policy);
    if (r < 0) return set_error(ret_error, Error{Code::InvalidArgument, "Cannot read signed_policy: " + errno_text(r),
                                                 std::nullopt});
    std::string_view signed_policy = policy;
    if (signed_policy.empty() || signed_policy.size() > kMaxSignedPolicySize)
      return set_error(ret_error, Error{Code::InvalidArgument,
                                        "signed_policy must be 1 to " + std::to_string(kMaxSignedPolicySize) +
                                            " bytes, got " + std::to_string(signed_policy.size()),
                                        std::nullopt});
    auto nonce = read_nonce(m);
    if (!nonce) return set_error(ret_error, nonce.error());
    return dispatch(m, "ValidatePlatform", [&](const Pending& pending) {
      service.validate_platform(
          std::string(signed_policy), std::move(*nonce),
          answering<PlatformReport>(pending, [](sd_bus_message* reply, const PlatformReport& report) {
            int r = sd_bus_message_append(reply, "s", report.report_json.c_str());
            if (r >= 0) r = append_bytes(reply, report.quote_message);
            if (r >= 0) r = append_bytes(reply, report.quote_signature);
            return r;
          }));
    });
  });
}

constexpr MemberAccess kAttestationMembers[] = {
    {"GetEndorsement", Access::Attest},
    {"ActivateCredential", Access::Attest},
    {"GetEvidence", Access::Attest},
    {"ValidatePlatform", Access::Attest},
};

}  // namespace

// Kept in sync with org.mcimd.Tre1.xml; a test compares them.
// TR 33.812 platform validation: enrolment of the attestation key (TPM2_MakeCredential on the
// operator's side, TPM2_ActivateCredential here), remote validation (evidence) and
// semi-autonomous validation (the device's own verdict on a signed policy).
const sd_bus_vtable attestation_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_ARGS("GetEndorsement", SD_BUS_ARGS("s", ek_type),
                            SD_BUS_RESULT("ay", ek_public, "ay", ek_certificate, "ay", ak_public),
                            method_get_endorsement, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ActivateCredential",
                            SD_BUS_ARGS("s", ek_type, "ay", credential_blob, "ay", encrypted_secret),
                            SD_BUS_RESULT("ay", secret), method_activate_credential, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("GetEvidence", SD_BUS_ARGS("ay", nonce), SD_BUS_RESULT("s", evidence),
                            method_get_evidence, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ValidatePlatform", SD_BUS_ARGS("s", signed_policy, "ay", nonce),
                            SD_BUS_RESULT("s", report, "ay", quote_message, "ay", quote_signature),
                            method_validate_platform, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

// EK, AK and quotes are the operator's business: every method needs Attest, which only the admin
// role has.
constinit const InterfaceAccess attestation_access{kAttestationInterface, kAttestationMembers};

}  // namespace mcimd::api
