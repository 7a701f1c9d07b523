// libFuzzer target: what a gRPC peer sends the gateway and the supervisor — a grpc-timeout value
// and a health Check's answer message — never crashes, and what is read stays in range.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squadron/core/check.hpp"
#include "squadron/http/request.hpp"
#include "squadron/supervisor/grpc_health.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (const auto status = squadron::supervisor::health_status(bytes))
    SQUADRON_CHECK(*status >= 0, "a serving status is never negative");
  if (const auto ms = squadron::http::grpc_timeout_ms(bytes)) {
    SQUADRON_CHECK(*ms >= 0, "a timeout is never negative");
    SQUADRON_CHECK(*ms <= 99'999'999LL * 3'600'000LL, "at most eight digits of hours");
  }
  return 0;
}
