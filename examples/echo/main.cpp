// Answers any method on any path with a JSON echo of the request: method, path, query,
// headers and body size, and the instance that answered (SQUADRON_INSTANCE, when run by
// `squadron up`). `?delay_ms=N` (at most 60000) waits N ms first, without holding a thread. The
// target of the conformance, drain, robustness and rollout tests. `/ws/{room}` is a WebSocket
// (the SDK's, on Boost.Beast): each message comes back as it went (text or binary); the text
// "describe" answers the room, the instance and the request's User-Agent as JSON.
#include <charconv>
#include <cstdlib>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "squadron/service/service.hpp"

namespace {

boost::json::object describe(const squadron::Request& req) {
  boost::json::object headers;
  for (const auto& h : req.headers()) {
    // Repeated fields are joined as a list would be (RFC 9110 §5.3).
    auto key = std::string(h.name);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto* existing = headers.if_contains(key)) {
      existing->as_string().append(", ");
      existing->as_string().append(h.value);
    } else {
      headers[key] = h.value;
    }
  }
  static const char* const instance = std::getenv("SQUADRON_INSTANCE");
  return {{"method", req.method_name()},
          {"path", req.path()},
          {"query", req.query()},
          {"headers", std::move(headers)},
          {"body_bytes", req.body().size()},
          {"instance", instance != nullptr ? instance : ""}};
}

squadron::Task<squadron::Response> echo(const squadron::Request& req) {
  if (auto delay = req.query_param("delay_ms")) {
    long ms = 0;
    const auto [ptr, ec] = std::from_chars(delay->data(), delay->data() + delay->size(), ms);
    if (ec != std::errc{} || ptr != delay->data() + delay->size() || ms < 0 || ms > 60'000) {
      co_return squadron::Response::problem(
          400, "delay_ms must be a whole number of milliseconds, 0 to 60000");
    }
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    timer.expires_after(std::chrono::milliseconds(ms));
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  co_return squadron::Response::json(describe(req));
}

}  // namespace

squadron::Task<void> echo_messages(squadron::WebSocket& ws) {
  while (auto m = co_await ws.receive()) {
    if (!m->binary && m->data == "describe") {
      static const char* const instance = std::getenv("SQUADRON_INSTANCE");
      const boost::json::object about{{"room", ws.param("room")},
                                      {"path", ws.path()},
                                      {"user_agent", ws.header("user-agent").value_or("")},
                                      {"instance", instance != nullptr ? instance : ""}};
      if (!co_await ws.send(boost::json::serialize(about))) break;
      continue;
    }
    if (!co_await ws.send(m->data, m->binary)) break;
  }
}

int main(int argc, char** argv) {
  squadron::Service app{"echo"};
  app.websocket("/ws/{room}", echo_messages);
  app.fallback(echo);
  return app.run(argc, argv);
}
