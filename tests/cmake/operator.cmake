# operator: the mcim-operator command line run as a process, and its AuC helpers in-process.
mcimd_test(unit operator_cli_test mcimd-operator-lib)
add_dependencies(operator_cli_test mcim-operator)

# Enrolment, validation and signed policies against software-made devices (verifier fixtures);
# the registry read in-process to see what the commands stored.
pkg_check_modules(OPERATOR_TEST_TSS2MU REQUIRED IMPORTED_TARGET tss2-mu)
mcimd_test(unit operator_attest_test mcimd-operator-lib mcimd-attestation-verifier mcimd-protocol
           PkgConfig::OPERATOR_TEST_TSS2MU OpenSSL::Crypto)
add_dependencies(operator_attest_test mcim-operator)
# mcim-operator batch: records, result lines, and runs of the binary over software-made gateways
# (bad records, a run killed midway and resumed).
mcimd_test(unit operator_batch_test mcimd-operator-lib mcimd-test-pki mcimd-attestation-verifier
           PkgConfig::OPERATOR_TEST_TSS2MU OpenSSL::Crypto)
add_dependencies(operator_batch_test mcim-operator)
# mcim-operator eap-sim-db: hostapd's eap_sim_db requests answered in-process and checked by the
# USIM side, and the binary serving a UNIX datagram socket.
mcimd_test(unit operator_eap_sim_db_test mcimd-operator-lib)
add_dependencies(operator_eap_sim_db_test mcim-operator)
