# attestation (device side) and protocol/: EK/AK, credential activation, quotes and evidence against
# a private swtpm and tpm2-tools; the wire formats without a TPM.
mcimd_test(unit protocol_evidence_test mcimd-protocol)
mcimd_test(integration attest_device_tpm_test mcimd-tpm mcimd-protocol PkgConfig::TSS2 OpenSSL::Crypto)
pkg_check_modules(DEVICE_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)  # the verifier fixtures (a policy signer)
mcimd_test(integration attest_device_evidence_test mcimd-attestation-device PkgConfig::DEVICE_TEST_TSS2MU)
