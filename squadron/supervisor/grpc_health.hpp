// The gRPC health checking protocol (grpc.health.v1.Health/Check), the readiness and liveness
// probe `{ grpc: true }` or `{ grpc: SERVICE }` asks (as the kubelet's gRPC probe): the request
// in the bytes the HTTP/2 transport sends, and the answer's message read. The protobuf is two
// fields; it is written and read here rather than with a protobuf library the project has no
// other use for.
//
//   const std::string bytes = health_check_request("127.0.0.1:5001", "");
//   ... exchange over http::H2Pool, the answer's body gathered ...
//   bool ok = grpc_status == 0 && health_status(body) == kServing;
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace squadron::supervisor {

// HealthCheckResponse.ServingStatus's SERVING.
inline constexpr int kServing = 1;

// POST /grpc.health.v1.Health/Check with a HealthCheckRequest{service} as one gRPC message, as
// an HTTP/1.1 request (the HTTP/2 transport's input).
std::string health_check_request(std::string_view authority, std::string_view service);

// The status in an answer's body (one gRPC message: a HealthCheckResponse); nullopt when the
// body is not one (compressed, cut short, a field malformed). An absent status is UNKNOWN (0).
std::optional<int> health_status(std::string_view body) noexcept;

}  // namespace squadron::supervisor
