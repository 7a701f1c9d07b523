// gRPC through the gateway: a call's answer as a gRPC client reads it, and its grpc-status
// counted. The gateway's own refusals (no route, no instance, a deadline spent, the breaker) are
// HTTP statuses with a problem+json body; a gRPC client reads neither, so a call gets them as a
// "trailers-only" answer (HTTP 200, grpc-status, grpc-message; gRPC's HTTP mapping, with 504 as
// DEADLINE_EXCEEDED); an upstream cut off in the middle of an answer ends it with grpc-status 14
// (UNAVAILABLE) instead of a reset stream.
//
//   co_await std::move(forwarded);
//   grpc_answer(res, req, stats);
//
// Thread safety: on the request's I/O thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "squadron/gateway/metrics.hpp"
#include "squadron/http/request.hpp"
#include "squadron/http/response.hpp"

namespace squadron::gateway {

// The gRPC status an HTTP answer without one means (gRPC's "HTTP to gRPC status mapping"):
// 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 413
// RESOURCE_EXHAUSTED, 429/502/503 UNAVAILABLE, 504 DEADLINE_EXCEEDED, others UNKNOWN.
int grpc_status_of_http(int status) noexcept;

// grpc-message's encoding: percent-encoded outside printable ASCII, and '%' itself.
std::string grpc_message(std::string_view text);

// The grpc-status a call ended without its instance's status is counted with: DEADLINE_EXCEEDED
// once its deadline is spent (or within 5 ms of it: the client's timer and the gateway's race,
// and the first to fire resets the stream), CANCELLED when its client gave up before, else
// UNAVAILABLE (the instance cut it off).
int grpc_code_of_cut(bool client_cancelled, std::chrono::steady_clock::time_point now,
                     std::chrono::steady_clock::time_point deadline) noexcept;

// Shapes `res` (the answer to gRPC call `call`) for a gRPC client and counts its grpc-status in
// `stats` (null: not counted) — now when it has one or is refused, at its body's end when it
// streams, or when the server gives up on it. `call.deadline()` is the call's (set from its
// grpc-timeout on arrival); its on_cancel() gets a step of this ahead of the transport's.
void grpc_answer(http::Response& res, http::Request& call, Stats* stats);

}  // namespace squadron::gateway
