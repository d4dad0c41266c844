#pragma once
// The names clients see on the bus: bus name, object paths, interfaces and the fixed error
// names. Shared by the adapter (daemon side) and the client (mcimctl) so both spell them alike.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace mcimd::api {

inline constexpr const char* kBusName = "org.mcimd.Tre1";
inline constexpr const char* kRootPath = "/org/mcimd/Tre1";
inline constexpr const char* kProfilePathPrefix = "/org/mcimd/Tre1/Profile";

inline constexpr const char* kManagerInterface = "org.mcimd.Tre1.Manager";
inline constexpr const char* kProfileInterface = "org.mcimd.Tre1.Profile";
inline constexpr const char* kUsimInterface = "org.mcimd.Tre1.USimApplication";
inline constexpr const char* kAttestationInterface = "org.mcimd.Tre1.Attestation";

inline constexpr const char* kErrorPrefix = "org.mcimd.Tre1.Error.";

// Largest profile document InstallProfile reads from the passed descriptor.
inline constexpr std::size_t kMaxProfileDocumentSize = 64 * 1024;

// Attestation argument bounds, checked by the adapter and by mcimctl before it calls.
// A nonce of 1 to 64 bytes: 64 is a SHA-512 digest; TPM2_Quote's qualifyingData is a
// TPM2B_DATA, which holds at most sizeof(TPMT_HA) = 66 bytes (TPM 2.0 Part 2 §10.4.3).
inline constexpr std::size_t kMaxAttestationNonceSize = 64;
// Each of TPM2_ActivateCredential's TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET is a few hundred
// bytes even for an RSA-4096 EK (Part 2 sizes them by the largest digest and key); 4096 leaves
// room and keeps a caller's input small.
inline constexpr std::size_t kMaxCredentialPartSize = 4096;
// The signed reference policy (JWS compact serialisation) ValidatePlatform accepts.
inline constexpr std::size_t kMaxSignedPolicySize = 256 * 1024;
// The EK templates GetEndorsement and ActivateCredential know (TCG EK Credential Profile,
// template L-1 RSA-2048 and template L-2 NIST P-256).
inline constexpr const char* kEkTypeEcc = "ecc";
inline constexpr const char* kEkTypeRsa = "rsa";

// "/org/mcimd/Tre1/Profile/<index>".
std::string profile_path(uint32_t index);
// The index of a profile object path; nullopt for anything else (other prefix, a sign, leading
// zeros, trailing components, a value beyond uint32_t).
std::optional<uint32_t> parse_profile_path(std::string_view path);

// "org.mcimd.Tre1.Error.<code_name(code)>" for every Code.
std::string error_name(Code code);
// The Code behind one of our error names; nullopt for a foreign name.
std::optional<Code> code_from_error_name(std::string_view name);

// Registers every error name with sd-bus's error map, so sd_bus_error_set() on one of our names
// carries a meaningful errno (NotFound → ENOENT, NotAuthorized → EACCES, ...). Idempotent.
void register_error_map();

}  // namespace mcimd::api
