mcimd_test(unit daemon_config_test mcimd-config)
mcimd_test(integration daemon_e2e_test PkgConfig::SYSTEMD)
add_dependencies(daemon_e2e_test mcimd mcimctl mcim-operator)
mcimd_test(unit daemon_worker_test mcimd-daemon-lib)
