#pragma once
// What the provisioner needs of mcimd, as one interface: the attestation calls of enrolment
// (mcimctl attest endorsement / activate) and the two provisioning calls of Manager. BusMcimd
// makes them over D-Bus with the project's client (dbus-api/client.hpp); tests put a fake behind
// the same interface. Every failure comes back classified for the retry logic: mcimd's named
// errors are refusals (Busy excepted), a bus without mcimd on it is transient.
#include <optional>
#include <string>

#include "agent/failure.hpp"
#include "common/bytes.hpp"
#include "dbus-api/client.hpp"
#include "dbus-api/service.hpp"

namespace mcimd::agent {

struct InstalledPackage {
  std::string profile;  // mcimd's object path of the installed profile
  std::string receipt;  // mcimd-install-receipt-1 JSON, sent to the operator unchanged
};

class McimdLink {
 public:
  virtual ~McimdLink() = default;
  // Attestation.GetEndorsement(ek_type): EK public area, EK certificate, AK public area.
  [[nodiscard]] virtual Outcome<api::EndorsementData> get_endorsement(const std::string& ek_type) = 0;
  // Attestation.ActivateCredential: the secret the operator's challenge hides, released by the TPM.
  [[nodiscard]] virtual Outcome<SecureBytes> activate_credential(const std::string& ek_type,
                                                                 const Bytes& credential_blob,
                                                                 const Bytes& encrypted_secret) = 0;
  // Manager.RequestPackage(session, operator_nonce): mcimd-package-request-1 JSON, sent on unchanged.
  [[nodiscard]] virtual Outcome<std::string> request_package(const std::string& session,
                                                             const Bytes& operator_nonce) = 0;
  // Manager.InstallPackage(package): idempotent for the same package text, with a fresh receipt.
  [[nodiscard]] virtual Outcome<InstalledPackage> install_package(const std::string& package) = 0;
};

// A D-Bus error turned into a Failure of party mcimd: org.mcimd.Tre1.Error.Busy and a bus without
// mcimd (NoServer, ServiceUnknown, NameHasNoOwner, NoReply, Timeout, Disconnected) are Transient;
// other org.mcimd.Tre1.Error.* names are Refused with their code; AccessDenied (the bus policy) is
// Refused NotAuthorized; anything else Refused Internal naming the error.
Failure mcimd_failure(std::string_view call, const api::CallError& error);

// McimdLink over the system bus (or `bus_address`): connects on the first call, and again after a
// failure that lost the connection.
class BusMcimd final : public McimdLink {
 public:
  explicit BusMcimd(std::optional<std::string> bus_address) : address_(std::move(bus_address)) {}

  Outcome<api::EndorsementData> get_endorsement(const std::string& ek_type) override;
  Outcome<SecureBytes> activate_credential(const std::string& ek_type, const Bytes& credential_blob,
                                           const Bytes& encrypted_secret) override;
  Outcome<std::string> request_package(const std::string& session, const Bytes& operator_nonce) override;
  Outcome<InstalledPackage> install_package(const std::string& package) override;

 private:
  template <class T, class Call>
  Outcome<T> call(std::string_view what, Call&& call);

  std::optional<std::string> address_;
  std::optional<api::Client> client_;
};

}  // namespace mcimd::agent
