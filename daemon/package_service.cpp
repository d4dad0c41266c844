// Remote provisioning (TR 33.812 §5.1.3.5): package requests and the install of MCIM packages.
#include "daemon/service_core.hpp"

namespace mcimd::daemon {

void ServiceCore::request_package(std::string, Bytes, api::Reply<std::string> reply) {
  reply(fail(Code::Unsupported, "Remote provisioning is not available in this mcimd yet"));
}

void ServiceCore::install_package(std::string, api::Reply<api::PackageInstall> reply) {
  reply(fail(Code::Unsupported, "Remote provisioning is not available in this mcimd yet"));
}

}  // namespace mcimd::daemon
