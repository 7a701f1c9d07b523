#include "squadron/gateway/attempts.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "squadron/core/scope_exit.hpp"
#include "squadron/http/outbound.hpp"
#include "squadron/resilience/backoff.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// What the attempts of one request have seen so far.
struct Attempts::Tried {
  std::array<std::string_view, 8> ids;  // instances tried, each once
  std::size_t count = 0;
  std::string last_error;
  bool refused = false;  // the last attempt could not connect: the instance got nothing
  bool timed_out = false;
  resilience::RetryBudget::Slot slot;  // back to the thread's budget when the request ends
};

Affinity affinity_of(const http::Request& req, const registry::ProxyPolicy& policy) {
  Affinity a;
  if (policy.affinity.empty()) return a;
  if (policy.affinity == "source_ip") {
    a.key = core::fnv1a64(req.remote_address());
  } else if (policy.affinity == "header") {
    if (auto v = req.header(policy.affinity_name); v && !v->empty()) a.key = core::fnv1a64(*v);
  } else if (policy.affinity == "cookie") {
    a.cookie = policy.affinity_name;
    a.secure = req.secure();
    // Cookie: a=1; NAME=TOKEN; b=2 (in one field or several)
    for (const auto& h : req.headers()) {
      if (!http::iequals(h.name, "cookie")) continue;
      std::string_view rest = h.value;
      while (!rest.empty()) {
        const auto semi = rest.find(';');
        std::string_view pair = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
        const auto eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == a.cookie)
          a.token = pair.substr(eq + 1);
      }
    }
    std::uint64_t n = 0;
    const char* end = a.token.data() + a.token.size();
    if (a.token.size() == 16 && std::from_chars(a.token.data(), end, n, 16).ptr == end)
      a.instance = n;  // anything else names no instance: the balancer chooses
  }
  return a;
}

std::uint64_t instance_hash(std::string_view id) { return core::mix64(core::fnv1a64(id)); }

std::string instance_token(std::string_view id) {
  return fmt::format("{:016x}", instance_hash(id));
}

std::optional<std::size_t> affine_pick(const resilience::Balancer& balancer,
                                       const resilience::Pool& pool, const Affinity& a,
                                       std::span<const std::string_view> tried,
                                       std::chrono::steady_clock::time_point now) {
  if (a.key) return balancer.pick_by_key(pool, *a.key, tried, now);
  if (!a.instance) return std::nullopt;
  for (std::size_t i = 0; i < pool.ready.size(); ++i) {
    const std::string& id = pool.ready[i].id;
    if (instance_hash(id) != *a.instance) continue;
    // Draining instances are not ready: their sessions move; so do an ejected one's.
    if (balancer.ejected(id, now) || std::find(tried.begin(), tried.end(), id) != tried.end())
      return std::nullopt;
    return i;
  }
  return std::nullopt;
}

void stick(const Affinity& a, std::string_view chosen, http::Response& res) {
  if (a.cookie.empty()) return;
  if (a.instance == instance_hash(chosen)) return;
  res.headers.emplace_back("Set-Cookie",
                           fmt::format("{}={}; Path=/; HttpOnly; SameSite=Lax{}", a.cookie,
                                       instance_token(chosen), a.secure ? "; Secure" : ""));
}

Attempts::Attempts(std::uint64_t seed, std::function<const Cluster*(std::string_view)> latest)
    : balancer_(seed), rng_{seed * 31 + 7}, latest_(std::move(latest)) {}

bool Attempts::still_listed(const Cluster& service, std::string_view id) const {
  const Cluster* now = latest_ ? latest_(service.name) : &service;
  if (now == nullptr) return false;
  return std::any_of(now->ready.begin(), now->ready.end(),
                     [&](const Endpoint& e) { return e.id == id; });
}

asio::awaitable<void> Attempts::run(const Cluster& service, Forward f, http::Response& res) {
  Stats& stats = f.account.service();
  const auto bytes = f.request.bytes();
  http::Transport& transport =
      service.policy.protocol.empty() || h2_transport_ == nullptr ? *transport_ : *h2_transport_;
  Tried tried;
  const int attempts =
      std::min<int>(service.policy.retries + 1, static_cast<int>(tried.ids.size()));
  for (int n = 0; n < attempts; ++n) {
    // A retry after a refused connection goes to another instance at once, outside the budget:
    // it adds no load to the failing one (a dead instance still listed for a few milliseconds).
    if (n > 0 && !tried.refused && !co_await may_retry(service, stats, f, n, tried)) break;
    const auto now = n == 0 ? f.account.start() : Clock::now();
    const std::span<const std::string_view> skip{tried.ids.data(), tried.count};
    auto pick =
        n == 0 ? affine_pick(balancer_, pool_of(service), f.affinity, skip, now) : std::nullopt;
    if (!pick) pick = balancer_.pick(pool_of(service), skip, now);
    if (!pick) break;
    if (n > 0) stats.retries.add();
    const Endpoint& ep = service.ready[*pick];  // the caller keeps the service alive
    tried.ids[tried.count++] = ep.id;
    balancer_.started(ep);
    core::ScopeExit finish([this, &ep] { balancer_.finished(ep); });
    const auto x =
        co_await transport.exchange({ep.id, ep.host, ep.port}, bytes, f.request.options, res);
    const Next next = after(service, stats, f, ep, x, n, attempts, tried, res);
    if (next == Next::kAnswered) {
      if (x.outcome == http::Outcome::kAnswered) stick(f.affinity, ep.id, res);
      co_return;
    }
    if (next == Next::kStop) break;
  }
  if (tried.timed_out) {
    stats.timeouts.add();
    res = http::failure_answer(http::Outcome::kTimeout, service.name, {}, f.timeout);
    co_return;
  }
  res = http::failure_answer(http::Outcome::kRefused, service.name, tried.last_error, f.timeout);
}

asio::awaitable<bool> Attempts::may_retry(const Cluster& service, Stats& stats, const Forward& f,
                                          int n, Tried& tried) {
  // Full jitter: a random wait up to 25 ms, doubling per retry, at most 250 ms.
  const auto wait = resilience::full_jitter(
      n, {std::chrono::milliseconds(25), std::chrono::milliseconds(250)}, rng_());
  if (Clock::now() + wait >= f.request.options.deadline) co_return false;
  asio::steady_timer pause(co_await asio::this_coro::executor, wait);
  co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  // The retry budget: retries in flight at most 20 % of the requests in flight (at least 3, as
  // Envoy), so that a failing service is not hit with three times its load. An instance that
  // left the ready set meanwhile (it died: the registry saw its exit within milliseconds) took
  // its requests with it: retrying those does not load a struggling service, so, like a refused
  // connection, they are outside the budget.
  const auto in_flight = static_cast<std::int64_t>(stats.in_flight.get());
  const std::string_view last = tried.ids[tried.count - 1];
  bool exempt = !still_listed(service, last);
  for (int look = 0; !exempt && !budget_.allows(tried.slot, in_flight) && look < 10; ++look) {
    pause.expires_after(std::chrono::milliseconds(5));  // its exit may be news in a moment
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    exempt = !still_listed(service, last);
  }
  co_return exempt || budget_.acquire(tried.slot, in_flight);
}

Attempts::Next Attempts::after(const Cluster& service, Stats& stats, const Forward& f,
                               const Endpoint& ep, const http::Exchange& x, int n, int attempts,
                               Tried& tried, http::Response& res) {
  tried.refused = x.outcome == http::Outcome::kRefused;
  const auto now = Clock::now();
  const auto pool = pool_of(service);
  if (x.outcome == http::Outcome::kAnswered) {
    if (balancer_.record(pool, ep, res.status < 500, now)) stats.ejections.add();
    const bool more = n + 1 < attempts && service.ready.size() > tried.count;
    if (res.status == 503 && f.request.replayable && more) {
      tried.last_error = fmt::format("{}: 503", ep.id);
      return Next::kRetry;  // another instance may do better
    }
    // A gRPC call answered UNAVAILABLE before any message of the answer (trailers only): the
    // instance did not take it (it is stopping, or overloaded); another may, if the call can
    // go again as it was.
    if (f.request.grpc && more && x.replayable && !res.stream &&
        res.header("grpc-status") == std::optional<std::string_view>("14")) {
      tried.last_error = fmt::format("{}: UNAVAILABLE", ep.id);
      return Next::kRetry;
    }
    return Next::kAnswered;
  }
  if (f.request.options.client != nullptr && f.request.options.client->cancelled()) {
    // Its client gave up (an HTTP/2 stream reset): the instance is not to blame, and nobody
    // waits for an answer from another. Counted as nginx's 499 (Client Closed Request), not as
    // the service's failure.
    res = http::Response::problem(499, "the client cancelled the request");
    return Next::kAnswered;
  }
  if (balancer_.record(pool, ep, false, now)) stats.ejections.add();
  if (x.outcome == http::Outcome::kMalformed) {
    // An answer, but not one to pass on (framing, field count or size, control bytes).
    res = http::failure_answer(x.outcome, service.name, x.error, f.timeout);
    return Next::kAnswered;
  }
  // No answer from this instance (refused, reset, cut off, timed out).
  tried.last_error = fmt::format("{}: {}", ep.id, x.error);
  tried.timed_out =
      x.outcome == http::Outcome::kTimeout ||
      (x.outcome == http::Outcome::kConnectTimeout && now >= f.request.options.deadline);
  if (tried.timed_out) return Next::kStop;
  if (x.sent && !f.request.replayable) {
    res = http::failure_answer(http::Outcome::kFailed, service.name, tried.last_error, f.timeout);
    return Next::kAnswered;
  }
  return Next::kRetry;
}

}  // namespace squadron::gateway
