#include "squadron/gateway/admin.hpp"

#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <fmt/format.h>

#include "squadron/gateway/proxy.hpp"
#include "squadron/http/connection_metrics.hpp"

namespace squadron::gateway {

namespace asio = boost::asio;

bool Admin::handle(http::Request& req, http::Response& res, std::size_t) {
  if (req.method() != http::Method::kGet && req.method() != http::Method::kHead) {
    res = http::Response::problem(405, "the admin endpoints answer GET");
    res.set_header("Allow", "GET, HEAD");
    return true;
  }
  if (req.path() == "/upstreams") return false;
  if (req.path() == "/metrics") {
    res = http::Response::text(proxy_.metrics().prometheus());
    if (server_ != nullptr)
      http::append_connection_metrics(res.body, "", server_->memory(),
                                      http::ConnectionPool::memory());
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (req.path() == "/metrics.json") {
    res = http::Response::json(proxy_.metrics().json());
  } else if (req.path() == "/healthz") {
    res = http::Response::text("ok\n");
  } else {
    res = http::Response::problem(
        404, fmt::format("no admin endpoint {} (try /metrics, /metrics.json, /upstreams, /healthz)",
                         req.path()));
  }
  return true;
}

asio::awaitable<void> Admin::handle_async(http::Request&, http::Response& res, std::size_t) {
  // Each thread's counts are its own: read there, gathered here, answered from here.
  struct Gather {
    std::mutex mutex;
    std::map<std::string, int, std::less<>> busy;
    std::size_t left = 0;
  };
  auto g = std::make_shared<Gather>();
  const auto revision = proxy_.table()->revision();  // before the counts: a newer table only helps
  const auto executor = co_await asio::this_coro::executor;
  auto done =
      std::make_shared<asio::steady_timer>(executor, std::chrono::steady_clock::time_point::max());
  const std::size_t threads = proxy_.threads();
  if (contexts_.size() == threads) {
    g->left = threads;
    for (std::size_t i = 0; i < threads; ++i) {
      asio::post(*contexts_[i], [this, i, g, done, executor] {
        const auto busy = proxy_.in_flight(i);
        std::lock_guard lock(g->mutex);
        for (const auto& [id, n] : busy) g->busy[id] += n;
        if (--g->left == 0) asio::post(executor, [done] { done->cancel(); });
      });
    }
    co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
  } else if (threads == 1) {  // one thread, this one
    for (const auto& [id, n] : proxy_.in_flight(0)) g->busy[id] += n;
  }
  boost::json::object in_flight;
  {
    std::lock_guard lock(g->mutex);
    for (const auto& [id, n] : g->busy) in_flight[id] = n;
  }
  res = http::Response::json(
      boost::json::object{{"revision", revision}, {"in_flight", std::move(in_flight)}});
}

}  // namespace squadron::gateway
