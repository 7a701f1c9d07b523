// One request's accounting in the gateway's metrics: counted (and in flight) from its match, its
// status and time recorded when it ends, whichever way it ends — an admission's refusal, an
// upstream's answer or the gateway's own.
//
//   RequestAccount account{service_stats, route_stats, res, started_at};
//   ... res = ...;            // the destructor records res.status and the time since start
//
// Thread safety: the Stats are the calling I/O thread's own.
#pragma once

#include <chrono>

#include "squadron/gateway/metrics.hpp"
#include "squadron/http/response.hpp"

namespace squadron::gateway {

class RequestAccount final {
 public:
  // `route` null: the request came by a service's own port (no route). `res` outlives this.
  RequestAccount(Stats& service, Stats* route, const http::Response& res,
                 std::chrono::steady_clock::time_point start) noexcept
      : service_(service), route_(route), res_(res), start_(start) {
    service_.requests.add();
    service_.in_flight.add();
    if (route_ != nullptr) {
      route_->requests.add();
      route_->in_flight.add();
    }
  }
  // The request's count goes with it (into the coroutine that answers it); the moved-from
  // account records nothing.
  RequestAccount(RequestAccount&& o) noexcept
      : service_(o.service_), route_(o.route_), res_(o.res_), start_(o.start_), live_(o.live_) {
    o.live_ = false;
  }
  RequestAccount& operator=(RequestAccount&&) = delete;
  ~RequestAccount() {
    if (!live_) return;
    const auto took = std::chrono::steady_clock::now() - start_;
    service_.in_flight.sub();
    service_.finish(res_.status, took);
    if (route_ != nullptr) {
      route_->in_flight.sub();
      route_->finish(res_.status, took);
    }
  }
  RequestAccount(const RequestAccount&) = delete;
  RequestAccount& operator=(const RequestAccount&) = delete;

  Stats& service() const noexcept { return service_; }
  const http::Response& response() const noexcept { return res_; }
  Stats* route() const noexcept { return route_; }
  std::chrono::steady_clock::time_point start() const noexcept { return start_; }

 private:
  Stats& service_;
  Stats* route_;
  const http::Response& res_;
  std::chrono::steady_clock::time_point start_;
  bool live_ = true;
};

}  // namespace squadron::gateway
