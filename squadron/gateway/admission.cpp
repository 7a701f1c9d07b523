#include "squadron/gateway/admission.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "squadron/core/scope_exit.hpp"
#include "squadron/http/request.hpp"
#include "squadron/resilience/concurrency_limit.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;

namespace {

void busy(http::Response& res, std::string detail) {
  res = http::Response::problem(503, std::move(detail));
  res.set_header("Retry-After", "1");
}

}  // namespace

bool admit_rate(resilience::TokenBucket* bucket, const Route& route,
                std::chrono::steady_clock::time_point now, RequestAccount& account,
                http::Response& res) {
  if (bucket == nullptr) return true;
  const auto wait = bucket->take(now);
  if (wait.count() <= 0) return true;
  res = http::Response::problem(
      429, fmt::format("{} is limited to {} requests a second (bursts of {})", route.key(),
                       route.rate, route.burst));
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
  res.set_header("Retry-After", std::to_string(std::max<std::int64_t>(1, seconds)));
  account.service().rate_limited.add();
  if (account.route() != nullptr) account.route()->rate_limited.add();
  return false;
}

bool admit_deadline(std::optional<std::int64_t> left_ms, const Cluster& service,
                    RequestAccount& account, http::Response& res) {
  if (!left_ms || *left_ms > 0) return true;
  res = http::Response::problem(
      504, fmt::format("the request's deadline passed before it reached {} ({}: {})", service.name,
                       http::kTimeoutHeader, *left_ms));
  account.service().timeouts.add();
  return false;
}

bool admit_ready(const Cluster& service, http::Response& res) {
  if (!service.ready.empty() || service.policy.scale_to_zero || service.coming > 0) return true;
  busy(res, fmt::format("no ready instance of {} (starting, or all down)", service.name));
  return false;
}

std::chrono::milliseconds attempt_timeout(const Policy& policy,
                                          std::optional<std::int64_t> left_ms) noexcept {
  if (left_ms && *left_ms < policy.timeout.count())
    return std::chrono::milliseconds(std::max<std::int64_t>(1, *left_ms));
  return policy.timeout;
}

bool admit_in_flight(const Cluster& service, std::size_t threads, RequestAccount& account,
                     http::Response& res) {
  const resilience::ConcurrencyLimit breaker(service.policy.max_in_flight, threads);
  Stats& stats = account.service();
  const auto verdict = breaker.admit(static_cast<std::int64_t>(stats.in_flight.get()));
  if (verdict == resilience::ConcurrencyLimit::Verdict::kRefused) {
    stats.breaker_rejections.add();
    busy(res, fmt::format("{} has {} requests in flight, its limit: try again shortly",
                          service.name, service.policy.max_in_flight));
    return false;
  }
  if (verdict == resilience::ConcurrencyLimit::Verdict::kReached) stats.breaker_opens.add();
  return true;
}

asio::awaitable<std::optional<RouteMatch>> hold_for_wake(std::string name,
                                                         std::chrono::milliseconds timeout,
                                                         WakeWait wait, http::Response& res) {
  if (*wait.held >= wait.max_held) {
    busy(res, fmt::format("{} is starting and {} requests already wait for it", name, *wait.held));
    co_return std::nullopt;
  }
  ++*wait.held;
  core::ScopeExit unhold([held = wait.held] { --*held; });
  asio::steady_timer tick(co_await asio::this_coro::executor);
  auto woken = std::chrono::steady_clock::time_point{};
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now - woken >= std::chrono::seconds(1)) {  // again each second, in case one was lost
      woken = now;
      if (wait.wake) wait.wake(name);
    }
    if (now - wait.started_at >= timeout) {
      busy(res, fmt::format("no instance of {} became ready within {} ms", name, timeout.count()));
      co_return std::nullopt;
    }
    // Look often while a cold start is likely (tens of ms), then less.
    const bool early = now - wait.started_at < std::chrono::milliseconds(300);
    tick.expires_after(std::chrono::milliseconds(early ? 2 : 20));
    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    auto m = wait.relook();  // in a newer table, if one came
    if (!m) {
      res = http::Response::problem(404, fmt::format("no route for {}", wait.path));
      co_return std::nullopt;
    }
    if (!m->service->ready.empty()) co_return m;
    if (!m->service->policy.scale_to_zero && m->service->coming == 0) {  // none on its way
      busy(res, fmt::format("no ready instance of {} (all down)", name));
      co_return std::nullopt;
    }
  }
}

}  // namespace squadron::gateway
