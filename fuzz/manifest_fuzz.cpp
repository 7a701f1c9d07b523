// libFuzzer target: any text given as squadron.yaml yields a manifest or precise errors —
// never a crash, an exception, or an error without a message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squadron/control/manifest.hpp"
#include "squadron/core/check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto result = squadron::control::parse_manifest(text, "/tmp/fuzz/squadron.yaml");
  SQUADRON_CHECK(result.ok() == result.errors.empty(), "a manifest xor errors");
  for (const auto& e : result.errors)
    SQUADRON_CHECK(!e.message.empty(), "every error says what is wrong");
  return 0;
}
