# attestation verifier: credential challenges, EK chains, quotes, event logs (real ones from
# tests/vectors/eventlogs, with tpm2_eventlog as oracle), UEFI event content, IMA, policies, JWS
# (unit: software-made TPM structures; integration: a private swtpm driven by tpm2-tools).
pkg_check_modules(VERIFIER_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
foreach(t credential quote eventlog uefi ima policy ek jws)
  mcimd_test(unit verifier_${t}_test mcimd-attestation-verifier PkgConfig::VERIFIER_TEST_TSS2MU OpenSSL::Crypto)
endforeach()
mcimd_test(integration verifier_tpm_test mcimd-attestation-verifier PkgConfig::VERIFIER_TEST_TSS2MU OpenSSL::Crypto)
add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/fuzz ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
mcimd_test(integration verifier_swtpm_ca_test mcimd-attestation-verifier mcimd-tpm)
