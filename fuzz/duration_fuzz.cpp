// libFuzzer target: durations from flags, env and manifests ("250ms", "1.5s") never crash and
// never yield a negative or absurd value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squadron/core/check.hpp"
#include "squadron/core/duration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto d = squadron::core::parse_duration(text)) {
    SQUADRON_CHECK(d->count() >= 0, "a parsed duration is never negative");
    SQUADRON_CHECK(d->count() <= 1'000'000'000'000'000LL, "a parsed duration is bounded");
  }
  return 0;
}
