#pragma once
// The subscriber-key options every AKA command of mcim-operator takes: --k with one of --op and
// --opc, turned into SubscriberKeys (which names the option at fault).
#include <CLI/CLI.hpp>

#include <string>

#include "operator/auc.hpp"

namespace mcimd::op {

struct KeyOptions {
  std::string k;
  std::string op;
  std::string opc;
  CLI::Option* op_option = nullptr;
  CLI::Option* opc_option = nullptr;

  void add_to(CLI::App& app) {
    app.add_option("--k", k, "subscriber key K, 16 bytes hex")->required();
    op_option = app.add_option("--op", op, "operator variant OP, 16 bytes hex (OPc is derived)");
    opc_option = app.add_option("--opc", opc, "OPc, 16 bytes hex");
  }

  Result<SubscriberKeys> keys() const {
    SubscriberKeys::HexInput input;
    input.k = k;
    if (op_option->count() > 0) input.op = op;
    if (opc_option->count() > 0) input.opc = opc;
    return SubscriberKeys::from_hex(input);
  }
};

}  // namespace mcimd::op
