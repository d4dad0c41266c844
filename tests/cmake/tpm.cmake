# tpm/: TPM layer tests, each with a private swtpm (tpm_rc_test needs none).
mcimd_test(unit tpm_rc_test mcimd-tpm)
mcimd_test(integration tpm_context_test mcimd-tpm mcimd-esys-libctx OpenSSL::Crypto)
mcimd_test(integration tpm_objects_test mcimd-tpm mcimd-test-policy OpenSSL::Crypto)
mcimd_test(unit tpm_esys_libctx_test mcimd-esys-libctx mcimd-tpm OpenSSL::Crypto)
add_dependencies(tpm_esys_libctx_test mcimd)
mcimd_test(integration tpm_deletion_test mcimd-tpm mcimd-test-policy)
