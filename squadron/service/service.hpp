// The Squadron C++ service SDK: a REST service in a few lines.
//
//   squadron::Service app{"hello"};
//   app.get("/hello", [](const squadron::Request&) { return "Hello World!"; });
//   return app.run(argc, argv);
//
// Handlers take `const Request&` (or `Request&`) and return a string, a boost::json value, a
// Response — or asio::awaitable<one of those> to suspend without holding a thread. Built in,
// with no code: /healthz, /readyz (503 while draining), /metrics (Prometheus text), X-Request-Id
// kept or made and echoed, W3C traceparent read and kept on the request, a JSON access log
// (--access-log / SQUADRON_ACCESS_LOG=1), graceful drain on SIGTERM/SIGINT.
//
// Thread safety: register routes and middleware before run(); handlers run concurrently on the
// I/O threads (one request at a time per connection) and must be safe to call from several.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include "squadron/http/request.hpp"
#include "squadron/http/response.hpp"
#include "squadron/http/server.hpp"
#include "squadron/service/client.hpp"
#include "squadron/service/websocket.hpp"

namespace squadron {

using Request = http::Request;
using Response = http::Response;
template <typename T>
using Task = boost::asio::awaitable<T>;

namespace service {

// How a service runs; every field has a flag and an environment variable (see run()).
struct ServiceConfig {
  http::ServerConfig server;  // host, port (default 8080), threads (default: cores), limits
  // After SIGTERM: /readyz answers 503 and the service keeps accepting for this long, so load
  // balancers see it leave before it stops accepting. Default 0.
  std::chrono::milliseconds drain_delay{0};
  // After the drain delay: how long requests in flight may take before they are cut. Default 10 s.
  std::chrono::milliseconds stop_grace = std::chrono::seconds(10);
  bool access_log = false;  // one JSON line per request on stdout. Default off.
};

namespace internal {

inline Response to_response(Response r) { return r; }
inline Response to_response(std::string s) { return Response::text(std::move(s)); }
inline Response to_response(std::string_view s) { return Response::text(std::string(s)); }
inline Response to_response(const char* s) { return Response::text(std::string(s)); }
inline Response to_response(const boost::json::value& v) { return Response::json(v); }
inline Response to_response(const boost::json::object& v) { return Response::json(v); }
inline Response to_response(const boost::json::array& v) { return Response::json(v); }

template <typename T>
struct IsAwaitable : std::false_type {};
template <typename T>
struct IsAwaitable<boost::asio::awaitable<T>> : std::true_type {
  using type = T;
};

struct RouteHandler {
  std::function<Response(Request&)> sync;         // set for ordinary handlers
  std::function<Task<Response>(Request&)> async;  // set for coroutine handlers
};

template <typename F>
Task<Response> call_coroutine(std::shared_ptr<F> f, Request& req) {
  co_return to_response(co_await (*f)(req));
}

template <typename F>
RouteHandler make_handler(F f) {
  using Result = std::invoke_result_t<F&, Request&>;
  RouteHandler h;
  if constexpr (IsAwaitable<Result>::value) {
    h.async = [fn = std::make_shared<F>(std::move(f))](Request& req) {
      return call_coroutine(fn, req);
    };
  } else {
    h.sync = [fn = std::move(f)](Request& req) mutable { return to_response(fn(req)); };
  }
  return h;
}

class ServiceHandler;

}  // namespace internal

class Service final {
 public:
  // `name` labels metrics and logs (the SQUADRON_SERVICE of the runtime, if set, wins).
  explicit Service(std::string name);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Routes: `pattern` has static segments and {name} parameters ("/users/{id}").
  // A malformed or duplicate pattern ends the program at start-up with a message.
  template <typename F>
  Service& get(std::string_view pattern, F handler) {
    return route("GET", pattern, internal::make_handler(std::move(handler)));
  }
  template <typename F>
  Service& post(std::string_view pattern, F handler) {
    return route("POST", pattern, internal::make_handler(std::move(handler)));
  }
  template <typename F>
  Service& put(std::string_view pattern, F handler) {
    return route("PUT", pattern, internal::make_handler(std::move(handler)));
  }
  template <typename F>
  Service& patch(std::string_view pattern, F handler) {
    return route("PATCH", pattern, internal::make_handler(std::move(handler)));
  }
  template <typename F>
  Service& del(std::string_view pattern, F handler) {
    return route("DELETE", pattern, internal::make_handler(std::move(handler)));
  }
  // Any method ("*" for all of them).
  template <typename F>
  Service& on(std::string_view method, std::string_view pattern, F handler) {
    return route(method, pattern, internal::make_handler(std::move(handler)));
  }
  // A WebSocket endpoint (websocket.hpp): a GET of `pattern` asking to upgrade is accepted by
  // Boost.Beast and `handler` has the connection until it returns; any other request to it
  // gets 426 (Upgrade Required).
  Service& websocket(std::string_view pattern, WebSocketHandler handler);

  // What answers requests no route matches (instead of 404/405 problem documents).
  template <typename F>
  Service& fallback(F handler) {
    return set_fallback(internal::make_handler(std::move(handler)));
  }

  // Middleware. `before` runs ahead of the handler; returning a Response answers the request
  // without calling it. `after` may edit every response, including 404s and errors.
  Service& before(std::function<std::optional<Response>(Request&)> mw);
  Service& after(std::function<void(const Request&, Response&)> mw);

  // Parses --port/--host/--threads/--drain-delay/--grace/--access-log (and PORT, HOST,
  // SQUADRON_THREADS, SQUADRON_DRAIN_DELAY, SQUADRON_STOP_GRACE, SQUADRON_ACCESS_LOG), serves
  // until SIGTERM/SIGINT, drains, and returns the process exit code (0 after a clean stop,
  // 2 for bad flags, 1 if the port cannot be bound).
  int run(int argc, char** argv);
  // Same with a ready-made config.
  int run(ServiceConfig config);

  // Whether /readyz answers 503 (set on SIGTERM; also settable for tests and custom drains).
  void set_draining(bool draining) noexcept;
  const std::string& name() const noexcept { return name_; }

  // Answers one request in-process, as the server would (routing, middleware, built-ins,
  // metrics). For tests of handlers without sockets.
  Response handle_for_test(Request& req);

 private:
  Service& route(std::string_view method, std::string_view pattern, internal::RouteHandler h);
  Service& set_fallback(internal::RouteHandler h);

  std::string name_;
  std::unique_ptr<internal::ServiceHandler> handler_;
};

}  // namespace service

using Service = service::Service;
using WebSocket = service::WebSocket;

}  // namespace squadron
