#pragma once
// The command-line options naming the key and certificates an operator signs documents for
// devices with (MCIM packages, releases, lifecycle commands), shared by the subcommands that sign.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "operator/policy_signing.hpp"

namespace mcimd::op {

struct SignerOptions {
  std::string key, cert;
  std::vector<std::string> chain;

  // --signer-key (required), --signer-cert and --signer-chain; `signs_what` ends the key's help
  // text ("packages"). With leaf_may_head_chain, --signer-cert may be left out when the first
  // --signer-chain file starts with the signer's certificate (a chain file as CAs deliver it);
  // otherwise --signer-cert is required.
  void add_to(CLI::App& app, std::string_view signs_what, bool leaf_may_head_chain = false) {
    app.add_option("--signer-key", key, "PEM P-256 key that signs " + std::string(signs_what))->required();
    auto* c = app.add_option("--signer-cert", cert, "its PEM certificate (extendedKeyUsage documentSigning)");
    if (leaf_may_head_chain)
      app.add_option("--signer-chain", chain,
                     "PEM certificates between it and the devices' anchor; without --signer-cert, the first file "
                     "starts with the signer's own certificate");
    else
      app.add_option("--signer-chain", chain, "PEM intermediates between it and the devices' anchor");
    if (!leaf_may_head_chain) c->required();
  }

  // load_policy_signer's checks and errors; "certificate: …" when no file names the certificate.
  Result<PolicySigner> load() const {
    std::vector<std::filesystem::path> paths(chain.begin(), chain.end());
    if (!cert.empty()) return load_policy_signer({key, cert, paths});
    if (paths.empty())
      return fail(Code::InvalidArgument, "certificate: give --signer-cert, or --signer-chain starting with it");
    const std::filesystem::path leaf = paths.front();
    paths.erase(paths.begin());
    return load_policy_signer({key, leaf, paths});
  }

  // The option a load() error is about, by the start of its message.
  static std::string_view option_of(const Error& e) {
    if (e.message.starts_with("certificate:")) return "--signer-cert";
    if (e.message.starts_with("chain:")) return "--signer-chain";
    return "--signer-key";
  }
};

}  // namespace mcimd::op
