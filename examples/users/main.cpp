// The README's walk-through as a complete service: path parameters, JSON in and out, a
// coroutine handler, middleware. `users --port 8081`, then e.g.
//   curl -s localhost:8081/users/7 -H 'Authorization: x'
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "squadron/service/service.hpp"

int main(int argc, char** argv) {
  squadron::Service app{"users"};
  app.get("/users/{id}", [](const squadron::Request& req) {  // path parameters
    return boost::json::value{{"id", req.param("id")}};      // JSON answers
  });
  app.post("/users", [](const squadron::Request& req) -> squadron::Response {
    auto doc = req.json();  // body as JSON, on demand
    if (!doc) return squadron::Response::problem(400, "the body must be JSON");
    return squadron::Response::json(*doc, 201);
  });
  app.get("/slow", [](const squadron::Request&) -> squadron::Task<std::string> {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, std::chrono::seconds(1));
    co_await t.async_wait(boost::asio::use_awaitable);  // suspends, holds no thread
    co_return "done";
  });
  app.before([](squadron::Request& req) -> std::optional<squadron::Response> {  // middleware
    if (!req.header("authorization")) return squadron::Response::problem(401, "log in first");
    return std::nullopt;
  });
  app.after([](const squadron::Request&, squadron::Response& res) {
    res.set_header("X-Served-By", "users");
  });
  return app.run(argc, argv);
}
