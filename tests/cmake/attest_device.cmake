# attestation (device side) and protocol/: EK/AK, credential activation, quotes and evidence against
# a private swtpm and tpm2-tools; the wire formats without a TPM.
mcimd_test(unit protocol_evidence_test mcimd-protocol)
mcimd_test(integration attest_device_tpm_test mcimd-tpm mcimd-protocol PkgConfig::TSS2 OpenSSL::Crypto)
mcimd_test(integration attest_device_evidence_test mcimd-attestation-device)
