// The standalone gateway's source of routes (`squadron gateway -c FILE`): upstreams named by
// address or DNS name instead of instances from a control plane. Every address behind a name is
// an endpoint (Envoy's STRICT_DNS), names are resolved again every `every`, and each change is
// published to the proxy as a new route table — requests in flight keep theirs, so a reload or
// a DNS change drops no connection. A name that cannot be resolved keeps its last addresses
// (the gateway serves from its last copy, as when the control plane is unreachable).
//
//   EndpointResolver r{io.get_executor(), proxy, log};
//   r.set(upstreams);                     // at start and on each reload of the file
//   core::spawn(io, r.run(5s), "resolver");
//   r.stop();
//
// Thread safety: all calls on the executor's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/gateway/proxy.hpp"
#include "squadron/registry/watch.hpp"

namespace squadron::gateway {

using registry::UpstreamSpec;

// The watch a set of upstreams makes with `addresses` (endpoint as written -> the addresses it
// resolved to): one ready instance per distinct address of each upstream, id
// "<upstream>@<address>:<port>", first seen at `first_seen` (kept across changes so that slow
// start applies to new endpoints only). Pure: the resolver's table and the tests'.
registry::Watch watch_of(const std::vector<UpstreamSpec>& upstreams,
                         const std::map<std::string, std::vector<std::string>>& addresses,
                         std::map<std::string, std::chrono::system_clock::time_point>& first_seen,
                         std::chrono::system_clock::time_point now, std::uint64_t revision);

class EndpointResolver final {
 public:
  EndpointResolver(boost::asio::io_context::executor_type executor, Proxy& proxy,
                   std::function<void(const std::string&)> log);
  // The upstreams to serve from now on; resolves and publishes at once (a reload).
  void set(std::vector<UpstreamSpec> upstreams);
  // Resolves every name again every `every`, until stop().
  boost::asio::awaitable<void> run(std::chrono::milliseconds every);
  void stop();

 private:
  boost::asio::awaitable<void> resolve_all();
  boost::asio::awaitable<void> refresh();  // resolve_all, then publish
  void publish();

  boost::asio::io_context::executor_type executor_;
  Proxy& proxy_;
  std::function<void(const std::string&)> log_;
  std::vector<UpstreamSpec> upstreams_;
  std::map<std::string, std::vector<std::string>> addresses_;  // endpoint -> its addresses
  std::map<std::string, std::string> failing_;                 // endpoint -> why (logged once)
  std::map<std::string, std::chrono::system_clock::time_point> first_seen_;
  registry::Watch last_;
  std::uint64_t revision_ = 0;
  boost::asio::steady_timer pause_;
  bool stopping_ = false;
  std::uint64_t generation_ = 0;  // set() calls: a resolution for an older set is not published
};

}  // namespace squadron::gateway
