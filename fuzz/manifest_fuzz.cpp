// libFuzzer target: any text given as squadron.yaml (and as the standalone gateway's file)
// yields a manifest or precise errors — never a crash, an exception, or an error without a
// message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squadron/control/gateway_file.hpp"
#include "squadron/control/manifest.hpp"
#include "squadron/core/check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto result = squadron::control::parse_manifest(text, "/tmp/fuzz/squadron.yaml");
  SQUADRON_CHECK(result.ok() == result.errors.empty(), "a manifest xor errors");
  for (const auto& e : result.errors)
    SQUADRON_CHECK(!e.message.empty(), "every error says what is wrong");
  const auto gateway = squadron::control::parse_gateway_file(text, "/tmp/fuzz/gateway.yaml");
  SQUADRON_CHECK(gateway.ok() == gateway.errors.empty(), "a gateway file xor errors");
  for (const auto& e : gateway.errors)
    SQUADRON_CHECK(!e.message.empty(), "every error says what is wrong");
  return 0;
}
