# agent: the provisioning agent — configuration, retry policy, state file and resume decisions,
# the HTTPS client against a local TLS stand-in operator (cpp-httplib over OpenSSL, certificates
# from the test PKI), and the provisioning flow with mcimd faked behind its interface.
pkg_check_modules(AGENT_TEST_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

mcimd_test(unit agent_config_test mcimd-agent-lib)
mcimd_test(unit agent_retry_test mcimd-agent-lib)
mcimd_test(unit agent_state_test mcimd-agent-lib)
mcimd_test(unit agent_http_test mcimd-agent-lib mcimd-test-pki PkgConfig::AGENT_TEST_HTTPLIB OpenSSL::SSL)
mcimd_test(unit agent_provisioner_test mcimd-agent-lib mcimd-test-pki PkgConfig::AGENT_TEST_HTTPLIB OpenSSL::SSL
           mcimd-attestation-verifier PkgConfig::TSS2)
