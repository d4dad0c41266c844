#pragma once
// Reading the dictionaries mcimd answers with, for tests that call it with sd-bus.
#include <gtest/gtest.h>
#include <systemd/sd-bus.h>

#include <map>
#include <string>

#include "common/bytes.hpp"

namespace mcimd::test {

// An a{say} (oFono's RES/CK/IK, SRES/Kc, AUTS) as key → bytes.
inline std::map<std::string, Bytes> read_say(sd_bus_message* m) {
  std::map<std::string, Bytes> out;
  EXPECT_GE(sd_bus_message_enter_container(m, 'a', "{say}"), 0);
  while (sd_bus_message_enter_container(m, 'e', "say") > 0) {
    const char* key = nullptr;
    const void* data = nullptr;
    size_t size = 0;
    sd_bus_message_read(m, "s", &key);
    sd_bus_message_read_array(m, 'y', &data, &size);
    auto* p = static_cast<const uint8_t*>(data);
    out[key] = size ? Bytes(p, p + size) : Bytes{};
    sd_bus_message_exit_container(m);
  }
  sd_bus_message_exit_container(m);
  return out;
}

}  // namespace mcimd::test
