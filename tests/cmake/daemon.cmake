mcimd_test(unit daemon_config_test mcimd-config)
