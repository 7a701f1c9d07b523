// gRPC through the gateway: a call's answer as a gRPC client reads it, and its grpc-status
// counted. The gateway's own refusals (no route, no instance, a deadline spent, the breaker) are
// HTTP statuses with a problem+json body; a gRPC client reads neither, so a call gets them as a
// "trailers-only" answer (HTTP 200, grpc-status, grpc-message; gRPC's HTTP mapping, with 504 as
// DEADLINE_EXCEEDED); an upstream cut off in the middle of an answer ends it with grpc-status 14
// (UNAVAILABLE) instead of a reset stream.
//
//   if (upstream.grpc) co_await grpc_call(std::move(inner), stats, res);
//
// Thread safety: on the request's I/O thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "squadron/gateway/metrics.hpp"
#include "squadron/http/response.hpp"

namespace squadron::gateway {

// The gRPC status an HTTP answer without one means (gRPC's "HTTP to gRPC status mapping"):
// 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 413
// RESOURCE_EXHAUSTED, 429/502/503 UNAVAILABLE, 504 DEADLINE_EXCEEDED, others UNKNOWN.
int grpc_status_of_http(int status) noexcept;

// grpc-message's encoding: percent-encoded outside printable ASCII, and '%' itself.
std::string grpc_message(std::string_view text);

// Shapes `res` (the answer to a gRPC call) for a gRPC client and counts its grpc-status in
// `stats` (null: not counted) — now when it has one or is refused, at its body's end when it
// streams.
void grpc_answer(http::Response& res, Stats* stats);

}  // namespace squadron::gateway
