#include "squadron/control/traffic.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "squadron/core/latency.hpp"
#include "squadron/core/spawn.hpp"
#include "squadron/http/client.hpp"

namespace squadron::control {

namespace asio = boost::asio;
namespace json = boost::json;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

namespace {

std::uint64_t count(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  return 0;
}

std::vector<std::uint64_t> numbers(const json::value* v) {
  std::vector<std::uint64_t> out;
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& x : v->as_array()) {
    if (x.is_uint64())
      out.push_back(x.as_uint64());
    else if (x.is_int64() && x.as_int64() >= 0)
      out.push_back(static_cast<std::uint64_t>(x.as_int64()));
    else
      out.push_back(0);
  }
  return out;
}

double rounded(double v, double unit) { return std::round(v / unit) * unit; }

}  // namespace

json::value to_json(const TrafficSample& s) {
  return json::object{{"at_ms", s.at_ms},
                      {"rps", rounded(s.rps, 0.1)},
                      {"in_flight", s.in_flight},
                      {"concurrency", rounded(s.concurrency, 0.01)},
                      {"error_rate", rounded(s.error_rate, 0.0001)},
                      {"p50_ms", rounded(s.p50_ms, 0.001)},
                      {"p90_ms", rounded(s.p90_ms, 0.001)},
                      {"p99_ms", rounded(s.p99_ms, 0.001)},
                      {"requests", s.requests},
                      {"errors", s.errors},
                      {"retries", s.retries},
                      {"ejections", s.ejections},
                      {"breaker_rejections", s.breaker_rejections},
                      {"rate_limited", s.rate_limited},
                      {"timeouts", s.timeouts}};
}

Traffic::Traffic(asio::io_context::executor_type executor, std::uint16_t admin_port,
                 std::size_t keep)
    : executor_(executor), admin_port_(admin_port), keep_(keep), timer_(executor) {}

Traffic::~Traffic() { *alive_ = false; }

void Traffic::start() {
  if (admin_port_ == 0) return;
  stopped_ = false;
  // Sampling the gateway goes on whatever happens to one sample.
  core::spawn(executor_, loop(), "the gateway's traffic sampler", [this, alive = alive_] {
    if (*alive && !stopped_) start();
  });
}

void Traffic::stop() {
  stopped_ = true;
  timer_.cancel();
}

asio::awaitable<void> Traffic::loop() {
  auto& pool = http::ConnectionPool::of(executor_.context());
  auto next = Clock::now();
  while (!stopped_) {
    next += interval;
    http::Response res;
    const auto x =
        co_await pool.get("127.0.0.1", admin_port_, "/metrics.json", Clock::now() + interval, res);
    if (stopped_) break;
    if (x.outcome == http::Outcome::kAnswered && res.status == 200) {
      boost::system::error_code ec;
      const auto doc = json::parse(res.body, ec);
      const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
      if (!ec && ingest(doc, Clock::now(), wall) && on_sample) on_sample();
    }
    // The gateway may be starting or restarting: the next second tries again.
    const auto now = Clock::now();
    if (next < now) next = now;
    timer_.expires_at(next);
    co_await timer_.async_wait(kAwait);
  }
}

bool Traffic::idle_in(const json::value& upstreams, std::string_view instance,
                      std::uint64_t revision) {
  const auto* o = upstreams.if_object();
  const auto* r = o != nullptr ? o->if_contains("revision") : nullptr;
  const auto* f = o != nullptr ? o->if_contains("in_flight") : nullptr;
  if (r == nullptr || f == nullptr || !f->is_object()) return false;
  const std::uint64_t seen = r->is_uint64()                        ? r->as_uint64()
                             : r->is_int64() && r->as_int64() >= 0 ? r->as_int64()
                                                                   : 0;
  if (seen < revision) return false;  // the gateway may still send it requests
  const auto* n = f->as_object().if_contains(instance);
  return n == nullptr || (n->is_int64() && n->as_int64() <= 0);
}

void Traffic::when_idle(const std::string& instance, std::uint64_t revision,
                        Clock::time_point deadline, std::function<void(bool)> done) {
  if (admin_port_ == 0) {
    done(true);
    return;
  }
  idle_waiters_.push_back({std::move(instance), revision, deadline, std::move(done)});
  if (!drain_loop_running_) {
    drain_loop_running_ = true;
    core::spawn(executor_, drain_loop(alive_), "the drain watcher", [this, alive = alive_] {
      // The waiters left are bounded by the supervisor's own drain timer; a new one restarts it.
      if (*alive) drain_loop_running_ = false;
    });
  }
}

asio::awaitable<void> Traffic::drain_loop(std::shared_ptr<bool> alive) {
  asio::steady_timer pause(executor_);
  auto& pool = http::ConnectionPool::of(executor_.context());
  while (*alive && !idle_waiters_.empty()) {
    auto deadline = idle_waiters_.front().deadline;
    for (const auto& w : idle_waiters_) deadline = std::min(deadline, w.deadline);
    http::Response res;
    const auto x =
        co_await pool.get("127.0.0.1", admin_port_, "/upstreams",
                          std::min(deadline, Clock::now() + std::chrono::seconds(1)), res);
    if (!*alive) co_return;
    std::optional<json::value> doc;
    if (x.outcome == http::Outcome::kAnswered && res.status == 200) {
      boost::system::error_code ec;
      doc = json::parse(res.body, ec);
      if (ec) doc.reset();
    }
    // Answer every waiter this round settles; `done` may add waiters (a rollout's next step).
    std::vector<std::pair<std::function<void(bool)>, bool>> settled;
    const auto now = Clock::now();
    std::erase_if(idle_waiters_, [&](IdleWaiter& w) {
      if (doc && idle_in(*doc, w.instance, w.revision)) {
        settled.emplace_back(std::move(w.done), true);
        return true;
      }
      if (now >= w.deadline) {
        settled.emplace_back(std::move(w.done), false);
        return true;
      }
      return false;
    });
    for (auto& [done, idle] : settled) {
      done(idle);
      if (!*alive) co_return;
    }
    if (idle_waiters_.empty()) break;
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(kAwait);
  }
  if (*alive) drain_loop_running_ = false;
}

bool Traffic::ingest(const json::value& metrics, Clock::time_point now, std::int64_t wall_ms) {
  const auto* o = metrics.if_object();
  const auto* services = o != nullptr ? o->if_contains("services") : nullptr;
  if (services == nullptr || !services->is_array()) return false;
  const auto bounds = numbers(o->if_contains("latency_bounds_us"));
  for (const auto& sv : services->as_array()) {
    const auto* so = sv.if_object();
    const auto* name = so != nullptr ? so->if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string()) continue;
    const std::string_view service = name->as_string();
    TrafficSample s;
    s.at_ms = wall_ms;
    s.requests = count(*so, "requests");
    if (const auto* f = so->if_contains("in_flight"); f != nullptr && f->is_number())
      s.in_flight = std::max(0.0, f->to_number<double>());
    std::uint64_t answers = 0;
    if (const auto* r = so->if_contains("responses"); r != nullptr && r->is_object()) {
      for (const auto& [cls, n] : r->as_object()) {
        const std::uint64_t v =
            n.is_uint64()  ? n.as_uint64()
            : n.is_int64() ? static_cast<std::uint64_t>(std::max<std::int64_t>(0, n.as_int64()))
                           : 0;
        answers += v;
        if (cls == "5xx") s.errors = v;
      }
    }
    s.retries = count(*so, "retries");
    s.ejections = count(*so, "ejections");
    s.breaker_rejections = count(*so, "breaker_rejections");
    s.rate_limited = count(*so, "rate_limited");
    s.timeouts = count(*so, "timeouts");
    std::vector<std::uint64_t> latency;
    std::uint64_t latency_sum = 0;
    if (const auto* l = so->if_contains("latency_us"); l != nullptr && l->is_object()) {
      latency = numbers(l->as_object().if_contains("counts"));
      latency_sum = count(l->as_object(), "sum");
    }
    s.concurrency = s.in_flight;

    auto it = previous_.find(service);
    if (it != previous_.end() && s.requests >= it->second.requests &&
        answers >= it->second.answers && latency.size() == it->second.latency.size()) {
      const Previous& p = it->second;
      const double seconds = std::chrono::duration<double>(now - p.at).count();
      if (seconds > 0) {
        s.rps = static_cast<double>(s.requests - p.requests) / seconds;
        if (latency_sum >= p.latency_sum_us) {
          const double busy = static_cast<double>(latency_sum - p.latency_sum_us) / 1e6;
          s.concurrency = std::max(s.in_flight, busy / seconds);
        }
      }
      const auto new_answers = answers - p.answers;
      if (new_answers > 0 && s.errors >= p.errors)
        s.error_rate = static_cast<double>(s.errors - p.errors) / static_cast<double>(new_answers);
      std::vector<std::uint64_t> delta(latency.size());
      for (std::size_t i = 0; i < latency.size(); ++i)
        delta[i] = latency[i] >= p.latency[i] ? latency[i] - p.latency[i] : 0;
      s.p50_ms = core::latency_quantile_ms(delta, bounds, 0.50);
      s.p90_ms = core::latency_quantile_ms(delta, bounds, 0.90);
      s.p99_ms = core::latency_quantile_ms(delta, bounds, 0.99);
    }
    // else: the first look at this service, or the gateway restarted: deltas start from here.
    previous_[std::string(service)] = {now,      s.requests,  answers,
                                       s.errors, latency_sum, std::move(latency)};
    auto& list = samples_[std::string(service)];
    list.push_back(s);
    while (list.size() > keep_) list.pop_front();
  }
  return true;
}

const std::deque<TrafficSample>* Traffic::history(std::string_view service) const {
  auto it = samples_.find(service);
  return it == samples_.end() ? nullptr : &it->second;
}

json::value Traffic::json(std::size_t history, std::string_view service) const {
  json::object services;
  for (const auto& [name, list] : samples_) {
    if (!service.empty() && name != service) continue;
    if (list.empty()) continue;
    json::array h;
    const std::size_t from = list.size() > history ? list.size() - history : 0;
    for (std::size_t i = from; i < list.size() && history > 0; ++i) h.push_back(to_json(list[i]));
    services[name] = json::object{{"latest", to_json(list.back())}, {"history", std::move(h)}};
  }
  return json::object{{"interval_ms", interval.count()}, {"services", std::move(services)}};
}

}  // namespace squadron::control
