// What stands between a matched request and its upstream, in order: the route's rate limit, the
// caller's deadline, an instance to send it to (or a wait while a service scaled to zero wakes)
// and the service's concurrency limit. Each check answers in `res` and returns false to refuse,
// counting the refusal in the request's account.
//
//   if (!admit_rate(bucket, route, now, account, res)) co_return;          // 429
//   if (!admit_deadline(req.timeout_left_ms(), service, account, res)) ...  // 504
//
// Thread safety: on the request's I/O thread; a TokenBucket is shared and locks itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "squadron/gateway/accounting.hpp"
#include "squadron/gateway/route_table.hpp"
#include "squadron/http/response.hpp"
#include "squadron/resilience/token_bucket.hpp"

namespace squadron::gateway {

// The route's token bucket (null: no limit): 429 with Retry-After when it is empty.
bool admit_rate(resilience::TokenBucket* bucket, const Route& route,
                std::chrono::steady_clock::time_point now, RequestAccount& account,
                http::Response& res);

// The caller's X-Squadron-Timeout-Ms: 504 when it has nothing left.
bool admit_deadline(std::optional<std::int64_t> left_ms, const Cluster& service,
                    RequestAccount& account, http::Response& res);

// A ready instance: 503 with Retry-After when there is none and the service does not scale to
// zero (then the request may wait: hold_for_wake()).
bool admit_ready(const Cluster& service, http::Response& res);

// The bound of this request's attempts: the route timeout, or the caller's time left if less.
std::chrono::milliseconds attempt_timeout(const Policy& policy,
                                          std::optional<std::int64_t> left_ms) noexcept;

// The circuit breaker: at most max_in_flight requests to the service, shared out over
// `threads`, counting the service's requests in flight on this thread (this one included):
// 503 with Retry-After beyond it.
bool admit_in_flight(const Cluster& service, std::size_t threads, RequestAccount& account,
                     http::Response& res);

// A wait for a service scaled to zero. `relook` finds the request's match in the newest table
// (nullopt: no route any more); `wake` asks the control plane to start the service.
struct WakeWait {
  std::function<std::optional<RouteMatch>()> relook;
  std::function<void(const std::string& service)> wake;
  std::chrono::steady_clock::time_point started_at;
  std::string_view path;  // the request's, for the 404 (the request outlives the wait)
  int* held = nullptr;    // requests this thread holds (counted up while this one waits)
  int max_held = 1024;
};

// Holds the request (in flight: demand the autoscaler sees) until service `name` has a ready
// instance, asking to wake it once a second, for at most `timeout` since wait.started_at; the
// match with a ready instance, or nullopt with the answer in `res` (503 when too many wait or
// it did not start in time, 404 when the route went away). `res` outlives the wait.
boost::asio::awaitable<std::optional<RouteMatch>> hold_for_wake(std::string name,
                                                                std::chrono::milliseconds timeout,
                                                                WakeWait wait, http::Response& res);

}  // namespace squadron::gateway
