mcimd_test(unit dbus_access_test mcimd-dbus-api)
mcimd_test(unit dbus_ctl_test mcimd-ctl)
mcimd_test(integration dbus_adapter_test mcimd-dbus-api mcimd-protocol nlohmann_json::nlohmann_json)
# The integration test drives the real mcimctl binary.
add_dependencies(dbus_adapter_test mcimctl)
