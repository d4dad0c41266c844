mcimd_test(unit store_test mcimd-store nlohmann_json::nlohmann_json OpenSSL::Crypto)
mcimd_test(unit store_crash_test mcimd-store OpenSSL::Crypto)
mcimd_test(unit store_factory_test mcimd-store)
