// Calling another service of the fleet from a coroutine handler, by name.
//
//   auto catalog = squadron::Client::for_service("catalog");   // SQUADRON_CATALOG_URL
//   app.get("/page", [catalog](const Request& req) -> Task<Response> {
//     auto r = co_await catalog.get("/titles?genre=drama", &req);
//     if (r.status != 200) co_return Response::problem(502, "no catalogue");
//     ...
//   });
//
// The URL is the gateway's stable per-service listener, so every call gets the gateway's
// balancing over ready instances, retries, outlier ejection and circuit breaker; on top, the
// client keeps keep-alive connections (the gateway's upstream pool, one per I/O thread), bounds
// each call by its timeout and by the caller's deadline (`caused_by`), sends the time left on
// as X-Squadron-Timeout-Ms, passes X-Request-Id and traceparent along, and retries a call that
// could not connect at all (the gateway restarting) after a short jittered pause.
//
// Failures never throw: they come back as problem+json answers the handler can pass on or
// handle — 503 (nothing reachable), 504 (timeout or deadline spent), 502 (cut off).
//
// Thread safety: a Client is an immutable value; copy it into handlers freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "squadron/http/request.hpp"
#include "squadron/http/response.hpp"

namespace squadron {

struct ClientOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(15);  // per call, capped by deadlines
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(1);
  int connect_retries = 2;  // extra attempts when the connection is refused
};

class Client final {
 public:
  // The service `name` through its SQUADRON_<NAME>_URL (name upper-cased, '-' -> '_'). Without
  // that variable (not run by `squadron up`) every call answers 503 saying so.
  static Client for_service(std::string_view name, ClientOptions options = {});
  // A base URL "http://host:port" (an address literal or localhost).
  explicit Client(std::string_view base_url, ClientOptions options = {});

  boost::asio::awaitable<http::Response> get(std::string_view target,
                                             const http::Request* caused_by = nullptr) const;
  boost::asio::awaitable<http::Response> post(std::string_view target, std::string body,
                                              std::string_view content_type = "application/json",
                                              const http::Request* caused_by = nullptr) const;
  // Any method; `headers` as name/value pairs (framing headers are the client's to set).
  boost::asio::awaitable<http::Response> call(
      std::string_view method, std::string_view target, std::string body = {},
      std::vector<std::pair<std::string, std::string>> headers = {},
      const http::Request* caused_by = nullptr) const;

  bool configured() const noexcept { return port_ != 0; }
  const std::string& base_url() const noexcept { return url_; }

 private:
  std::string name_;  // for messages
  std::string url_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::string problem_;  // why the client cannot call (bad or missing URL)
  ClientOptions options_;
};

}  // namespace squadron
