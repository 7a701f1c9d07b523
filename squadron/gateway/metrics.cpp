#include "squadron/gateway/metrics.hpp"

#include <algorithm>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/core/prometheus.hpp"

namespace squadron::gateway {

namespace json = boost::json;

void Stats::finish(int status, std::chrono::nanoseconds took) noexcept {
  const int cls = status / 100;
  if (cls >= 1 && cls <= 5) responses[static_cast<std::size_t>(cls - 1)].add();
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  const auto it = std::lower_bound(kLatencyBoundsUs.begin(), kLatencyBoundsUs.end(), us);
  latency[static_cast<std::size_t>(it - kLatencyBoundsUs.begin())].add();
  latency_sum_us.add(us);
}

void Totals::add(const Stats& s) noexcept {
  requests += s.requests.get();
  in_flight += static_cast<std::int64_t>(s.in_flight.get());
  tunnels += static_cast<std::int64_t>(s.tunnels.get());
  for (std::size_t i = 0; i < responses.size(); ++i) responses[i] += s.responses[i].get();
  retries += s.retries.get();
  ejections += s.ejections.get();
  breaker_rejections += s.breaker_rejections.get();
  breaker_opens += s.breaker_opens.get();
  rate_limited += s.rate_limited.get();
  timeouts += s.timeouts.get();
  for (std::size_t i = 0; i < grpc.size(); ++i) grpc[i] += s.grpc[i].get();
  for (std::size_t i = 0; i < latency.size(); ++i) latency[i] += s.latency[i].get();
  latency_sum_us += s.latency_sum_us.get();
}

Metrics::Metrics(std::size_t threads) : threads_(std::max<std::size_t>(1, threads)) {}

Totals Metrics::Entry::totals() const {
  Totals t;
  for (const auto& s : per_worker) t.add(*s);
  return t;
}

Stats& Metrics::find(std::vector<std::unique_ptr<Entry>>& list, std::size_t worker,
                     std::string_view service, std::string_view route) {
  std::lock_guard lock(mutex_);
  for (auto& e : list) {
    if (e->service == service && e->route == route) return *e->per_worker[worker];
  }
  auto e = std::make_unique<Entry>();
  e->service = service;
  e->route = route;
  for (std::size_t i = 0; i < threads_; ++i) e->per_worker.push_back(std::make_unique<Stats>());
  list.push_back(std::move(e));
  return *list.back()->per_worker[worker];
}

Stats& Metrics::service(std::size_t worker, std::string_view service) {
  return find(services_, worker, service, {});
}

Stats& Metrics::route(std::size_t worker, std::string_view service, std::string_view route) {
  return find(routes_, worker, service, route);
}

namespace {

constexpr const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

json::object to_json(const Totals& t) {
  json::object responses;
  for (std::size_t i = 0; i < t.responses.size(); ++i) responses[kClasses[i]] = t.responses[i];
  json::array counts;
  for (auto c : t.latency) counts.push_back(c);
  json::object grpc;
  for (std::size_t i = 0; i < t.grpc.size(); ++i) {
    if (t.grpc[i] != 0) grpc[std::to_string(i)] = t.grpc[i];
  }
  json::object o{
      {"requests", t.requests},
      {"in_flight", t.in_flight},
      {"tunnels", t.tunnels},
      {"responses", std::move(responses)},
      {"retries", t.retries},
      {"ejections", t.ejections},
      {"breaker_rejections", t.breaker_rejections},
      {"breaker_opens", t.breaker_opens},
      {"rate_limited", t.rate_limited},
      {"timeouts", t.timeouts},
      {"latency_us", json::object{{"counts", std::move(counts)}, {"sum", t.latency_sum_us}}}};
  if (!grpc.empty()) o["grpc"] = std::move(grpc);
  return o;
}

// One family's lines for every entry (Prometheus wants a family's lines together).
void write_families(std::string& out, std::string_view prefix,
                    const std::vector<std::pair<std::string, Totals>>& entries, bool per_service) {
  auto out_it = std::back_inserter(out);
  auto counter = [&](std::string_view name, std::string_view help, auto get) {
    fmt::format_to(out_it, "# HELP {}_{} {}\n# TYPE {}_{} counter\n", prefix, name, help, prefix,
                   name);
    for (const auto& [labels, t] : entries)
      fmt::format_to(out_it, "{}_{}{{{}}} {}\n", prefix, name, labels, get(t));
  };
  counter("requests_total", "Requests taken.", [](const Totals& t) { return t.requests; });
  fmt::format_to(out_it,
                 "# HELP {}_in_flight Requests being answered.\n# TYPE {}_in_flight gauge\n",
                 prefix, prefix);
  for (const auto& [labels, t] : entries)
    fmt::format_to(out_it, "{}_in_flight{{{}}} {}\n", prefix, labels, t.in_flight);
  fmt::format_to(out_it,
                 "# HELP {}_tunnels Upgraded connections (WebSocket) passing bytes now.\n"
                 "# TYPE {}_tunnels gauge\n",
                 prefix, prefix);
  for (const auto& [labels, t] : entries)
    fmt::format_to(out_it, "{}_tunnels{{{}}} {}\n", prefix, labels, t.tunnels);
  fmt::format_to(out_it,
                 "# HELP {}_responses_total Answers by status class.\n"
                 "# TYPE {}_responses_total counter\n",
                 prefix, prefix);
  for (const auto& [labels, t] : entries) {
    for (std::size_t i = 0; i < t.responses.size(); ++i)
      fmt::format_to(out_it, "{}_responses_total{{{},class=\"{}\"}} {}\n", prefix, labels,
                     kClasses[i], t.responses[i]);
  }
  counter("rate_limited_total", "Requests answered 429 by the route's rate limit.",
          [](const Totals& t) { return t.rate_limited; });
  if (per_service) {
    counter("retries_total", "Attempts sent again to another instance.",
            [](const Totals& t) { return t.retries; });
    counter("ejections_total", "Instances ejected after consecutive failures.",
            [](const Totals& t) { return t.ejections; });
    counter("breaker_rejections_total", "Requests answered 503 at once: too many in flight.",
            [](const Totals& t) { return t.breaker_rejections; });
    counter("breaker_opens_total", "Times the in-flight limit was reached.",
            [](const Totals& t) { return t.breaker_opens; });
    counter("timeouts_total", "Requests answered 504.", [](const Totals& t) { return t.timeouts; });
    // Only the codes seen: most services speak no gRPC.
    fmt::format_to(out_it,
                   "# HELP {}_grpc_total gRPC calls by the grpc-status they ended with.\n"
                   "# TYPE {}_grpc_total counter\n",
                   prefix, prefix);
    for (const auto& [labels, t] : entries) {
      for (std::size_t i = 0; i < t.grpc.size(); ++i) {
        if (t.grpc[i] != 0)
          fmt::format_to(out_it, "{}_grpc_total{{{},code=\"{}\"}} {}\n", prefix, labels, i,
                         t.grpc[i]);
      }
    }
  }
  fmt::format_to(out_it,
                 "# HELP {}_latency_seconds Time to answer, from the request's head to its "
                 "answer.\n# TYPE {}_latency_seconds histogram\n",
                 prefix, prefix);
  for (const auto& [labels, t] : entries) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < t.latency.size(); ++i) {
      cumulative += t.latency[i];
      if (i < kLatencyBoundsUs.size()) {
        fmt::format_to(out_it, "{}_latency_seconds_bucket{{{},le=\"{}\"}} {}\n", prefix, labels,
                       static_cast<double>(kLatencyBoundsUs[i]) / 1e6, cumulative);
      } else {
        fmt::format_to(out_it, "{}_latency_seconds_bucket{{{},le=\"+Inf\"}} {}\n", prefix, labels,
                       cumulative);
      }
    }
    fmt::format_to(out_it, "{}_latency_seconds_sum{{{}}} {}\n", prefix, labels,
                   static_cast<double>(t.latency_sum_us) / 1e6);
    fmt::format_to(out_it, "{}_latency_seconds_count{{{}}} {}\n", prefix, labels, cumulative);
  }
}

}  // namespace

std::string Metrics::prometheus() const {
  std::vector<std::pair<std::string, Totals>> services;
  std::vector<std::pair<std::string, Totals>> routes;
  {
    std::lock_guard lock(mutex_);
    for (const auto& e : services_)
      services.emplace_back(fmt::format("service=\"{}\"", core::prometheus_label(e->service)),
                            e->totals());
    for (const auto& e : routes_)
      routes.emplace_back(
          fmt::format("service=\"{}\",route=\"{}\"", core::prometheus_label(e->service),
                      core::prometheus_label(e->route)),
          e->totals());
  }
  std::string out;
  out.reserve(2048 * (services.size() + routes.size() + 1));
  write_families(out, "squadron_service", services, true);
  write_families(out, "squadron_route", routes, false);
  return out;
}

json::value Metrics::json() const {
  std::lock_guard lock(mutex_);
  json::array bounds;
  for (auto b : kLatencyBoundsUs) bounds.push_back(b);
  json::array services;
  for (const auto& e : services_) {
    auto o = to_json(e->totals());
    o["name"] = e->service;
    services.push_back(std::move(o));
  }
  json::array routes;
  for (const auto& e : routes_) {
    auto o = to_json(e->totals());
    o["service"] = e->service;
    o["route"] = e->route;
    routes.push_back(std::move(o));
  }
  return json::object{{"latency_bounds_us", std::move(bounds)},
                      {"services", std::move(services)},
                      {"routes", std::move(routes)}};
}

}  // namespace squadron::gateway
