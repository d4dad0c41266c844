#pragma once
// mcim-operator rekey: new K and OPc for the profile a device has installed, as a re-key package
// (protocol::PackageHeader::rekey) built offline for one of the device's package requests
// (mcimctl package request), with no registry. The device keeps its old credentials until the
// new ones authenticate once, and goes back to them if the network's challenges still use them.
//
// Offline there is no enrolled AK to hold the request against: the request is checked with the
// AK and nonce it carries itself (check_package_request: its device id is that AK's name, the
// SRK certification verifies with it, the evidence answers its nonce). That proves the request is
// one TPM's, not that it is the operator's customer's: the operator compares the device id the
// command prints with its records before sending the package.
//
// With --auc, the subscription's AuC record gets the new keys once the package is written
// (replace_auc_keys), so the network challenges with them: deliver the package promptly, since
// until the device installs it, it only answers the old keys.
#include <CLI/CLI.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "operator/signer_options.hpp"

namespace mcimd::op {

struct RekeyOptions {
  SignerOptions signing;
  std::string request, iccid, imsi, k, opc, operator_id, package_id, out_file, auc;
  unsigned package_hours = 24;

  // The subcommand's options on `app`.
  void add_to(CLI::App& app);
  // Reads and checks the request, builds the package (counter: the request's + 1), writes it to
  // --out, then with --auc replaces the AuC record's keys (on failure the package is removed).
  // Exit codes as in cli.hpp: 2 naming the option for bad input, 1 when a check or a step
  // failed. K and OPc are wiped from the option strings once read and never printed.
  int run(std::ostream& out, std::ostream& err);
};

}  // namespace mcimd::op
