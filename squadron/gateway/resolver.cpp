#include "squadron/gateway/resolver.hpp"

#include <optional>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "squadron/core/address.hpp"
#include "squadron/core/spawn.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

namespace {

// The address an endpoint names literally ("10.0.0.5:8080", "[::1]:80"); nullopt for a DNS name
// or something that is no endpoint.
std::optional<std::string> literal_address(const std::string& endpoint) {
  std::string host;
  std::uint16_t port = 0;
  if (!core::split_host_port(endpoint, host, port)) return std::nullopt;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return address.to_string();
}

}  // namespace

registry::Watch watch_of(const std::vector<UpstreamSpec>& upstreams,
                         const std::map<std::string, std::vector<std::string>>& addresses,
                         std::map<std::string, std::chrono::system_clock::time_point>& first_seen,
                         std::chrono::system_clock::time_point now, std::uint64_t revision) {
  registry::Watch w;
  w.revision = revision;
  std::set<std::string> live;
  for (const auto& u : upstreams) {
    w.services.push_back(u.service);
    std::set<std::string> seen;
    for (const auto& e : u.endpoints) {
      std::string host;
      std::uint16_t port = 0;
      if (!core::split_host_port(e, host, port)) continue;
      auto it = addresses.find(e);
      if (it == addresses.end()) continue;
      for (const auto& address : it->second) {
        const bool v6 = address.find(':') != std::string::npos;
        const std::string where = (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
        if (!seen.insert(where).second) continue;  // two names, one address: one endpoint
        registry::Instance i;
        i.service = u.service.name;
        i.id = u.service.name + "@" + where;
        i.host = address;
        i.port = port;
        i.state = registry::State::kReady;
        i.pid = 0;
        auto [at, fresh] = first_seen.emplace(i.id, now);
        i.started_at = at->second;
        live.insert(i.id);
        w.instances.push_back(std::move(i));
      }
    }
  }
  for (auto it = first_seen.begin(); it != first_seen.end();) {
    it = live.count(it->first) != 0 ? std::next(it) : first_seen.erase(it);
  }
  return w;
}

EndpointResolver::EndpointResolver(asio::io_context::executor_type executor, Proxy& proxy,
                                   std::function<void(const std::string&)> log)
    : executor_(executor), proxy_(proxy), log_(std::move(log)), pause_(executor) {}

void EndpointResolver::stop() {
  stopping_ = true;
  pause_.cancel();
}

void EndpointResolver::set(std::vector<UpstreamSpec> upstreams) {
  upstreams_ = std::move(upstreams);
  ++generation_;
  std::set<std::string> wanted;
  for (const auto& u : upstreams_) {
    for (const auto& e : u.endpoints) {
      wanted.insert(e);
      if (auto address = literal_address(e)) addresses_[e] = {*address};  // no lookup, ever
    }
  }
  for (auto it = addresses_.begin(); it != addresses_.end();) {
    it = wanted.count(it->first) != 0 ? std::next(it) : addresses_.erase(it);
  }
  publish();
  core::spawn(executor_, refresh(), "resolving the gateway's upstreams");
}

asio::awaitable<void> EndpointResolver::refresh() {
  co_await resolve_all();
  if (!stopping_) publish();
}

asio::awaitable<void> EndpointResolver::resolve_all() {
  const auto generation = generation_;
  asio::ip::tcp::resolver resolver(executor_);
  std::set<std::string> done;
  const auto upstreams = upstreams_;  // set() may replace them while a lookup waits
  for (const auto& u : upstreams) {
    for (const auto& e : u.endpoints) {
      if (!done.insert(e).second) continue;
      std::string host;
      std::uint16_t port = 0;
      if (!core::split_host_port(e, host, port) || literal_address(e)) continue;
      auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), kAwait);
      if (stopping_ || generation != generation_) co_return;
      if (rec || results.empty()) {
        const std::string why = rec ? rec.message() : "no address";
        auto [it, fresh] = failing_.emplace(e, why);
        if (fresh || it->second != why) {
          it->second = why;
          log_(
              "cannot resolve " + e + " (" + why + "); " +
              (addresses_.count(e) != 0 ? "keeping its last addresses" : "no endpoint for it yet"));
        }
        continue;
      }
      if (failing_.erase(e) != 0) log_("resolved " + e + " again");
      std::set<std::string> found;
      for (const auto& r : results) found.insert(r.endpoint().address().to_string());
      addresses_[e] = {found.begin(), found.end()};
    }
  }
}

void EndpointResolver::publish() {
  auto w = watch_of(upstreams_, addresses_, first_seen_, std::chrono::system_clock::now(),
                    revision_ + 1);
  if (revision_ != 0 && w.services == last_.services && w.instances == last_.instances) return;
  revision_ = w.revision;
  last_ = w;
  proxy_.publish(RouteTable::from(w));
}

asio::awaitable<void> EndpointResolver::run(std::chrono::milliseconds every) {
  while (!stopping_) {
    pause_.expires_after(every);
    co_await pause_.async_wait(kAwait);
    if (stopping_) break;
    co_await refresh();
  }
}

}  // namespace squadron::gateway
