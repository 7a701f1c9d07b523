#include "squadron/service/client.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "squadron/core/splitmix.hpp"
#include "squadron/http/client.hpp"
#include "squadron/http/outbound.hpp"
#include "squadron/resilience/backoff.hpp"

namespace squadron {

namespace asio = boost::asio;

namespace {

thread_local core::SplitMix64 t_rng{0x5eed};  // retry jitter

std::string url_variable(std::string_view service) {
  std::string name = "SQUADRON_";
  for (char c : service)
    name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name + "_URL";
}

}  // namespace

Client Client::for_service(std::string_view name, ClientOptions options) {
  const auto variable = url_variable(name);
  const char* url = std::getenv(variable.c_str());
  Client c(url != nullptr ? url : "", options);
  c.name_ = name;
  if (url == nullptr) {
    c.problem_ = fmt::format(
        "{} is not set: run this service with `squadron up` (it gives every "
        "instance the URL of every service)",
        variable);
  }
  return c;
}

Client::Client(std::string_view base_url, ClientOptions options)
    : name_(base_url), url_(base_url), options_(options) {
  const auto u = boost::urls::parse_uri(base_url);
  if (!u || u->scheme() != "http" || !u->has_port() || u->port_number() == 0) {
    problem_ = fmt::format("\"{}\" is not a base URL like http://127.0.0.1:8080", base_url);
    return;
  }
  host_ = u->host_address();
  if (host_ == "localhost") host_ = "127.0.0.1";
  if (host_.size() > 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
  port_ = u->port_number();
}

asio::awaitable<http::Response> Client::get(std::string_view target,
                                            const http::Request* caused_by) const {
  co_return co_await call("GET", target, {}, {}, caused_by);
}

asio::awaitable<http::Response> Client::post(std::string_view target, std::string body,
                                             std::string_view content_type,
                                             const http::Request* caused_by) const {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Content-Type", std::string(content_type));
  co_return co_await call("POST", target, std::move(body), std::move(headers), caused_by);
}

asio::awaitable<http::Response> Client::call(
    std::string_view method, std::string_view target, std::string body,
    std::vector<std::pair<std::string, std::string>> headers,
    const http::Request* caused_by) const {
  if (port_ == 0) co_return http::Response::problem(503, problem_);
  const auto executor = co_await asio::this_coro::executor;
  const auto* io = executor.target<asio::io_context::executor_type>();
  if (io == nullptr) {
    co_return http::Response::problem(500, "squadron::Client runs on an io_context's thread");
  }
  const auto start = std::chrono::steady_clock::now();
  auto deadline = start + options_.timeout;
  if (caused_by != nullptr) deadline = std::min(deadline, caused_by->deadline());
  if (deadline <= start) {
    co_return http::Response::problem(
        504, fmt::format("the request's deadline passed before calling {}", name_));
  }

  std::string head;
  head.reserve(256 + target.size() + body.size());
  http::RequestHead h(head, method, target);
  h.field("Host", fmt::format("{}:{}", host_, port_));
  for (const auto& [name, value] : headers) {
    if (!http::hop_by_hop_field(name) && !http::iequals(name, "host")) h.field(name, value);
  }
  if (caused_by != nullptr) {
    if (!caused_by->request_id().empty()) h.field("X-Request-Id", caused_by->request_id());
    if (!caused_by->traceparent().empty()) h.field("traceparent", caused_by->traceparent());
  }
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start);
  h.deadline(timeout);
  h.end_with_body(body.size());
  head.append(body);
  const std::array<asio::const_buffer, 1> out{asio::buffer(head)};

  http::ExchangeOptions options;
  options.deadline = deadline;
  options.connect_timeout = options_.connect_timeout;
  options.head = method == "HEAD";
  const std::string key = host_ + ":" + std::to_string(port_);
  http::Response res;
  std::string error;
  for (int attempt = 0; attempt <= options_.connect_retries; ++attempt) {
    if (attempt > 0) {
      // Refused: the listener is restarting (the gateway comes back within a second). At least
      // 25 ms, plus a full-jitter draw from a window of 50 ms doubling to 200 ms, inside the
      // deadline.
      const auto wait =
          resilience::full_jitter(attempt,
                                  {std::chrono::milliseconds(50), std::chrono::milliseconds(200),
                                   std::chrono::milliseconds(25)},
                                  t_rng());
      if (std::chrono::steady_clock::now() + wait >= deadline) break;
      asio::steady_timer pause(executor, wait);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    const auto x = co_await http::ConnectionPool::of(io->context(), 64)
                       .exchange({key, host_, port_}, out, options, res);
    // Refused, or no connection in time with time left: nothing was sent, safe for any method.
    const bool again =
        x.outcome == http::Outcome::kRefused || (x.outcome == http::Outcome::kConnectTimeout &&
                                                 std::chrono::steady_clock::now() < deadline);
    if (x.outcome == http::Outcome::kAnswered) co_return res;
    error = x.error;
    if (!again) co_return http::failure_answer(x.outcome, name_, x.error, timeout);
  }
  co_return http::failure_answer(http::Outcome::kRefused, name_, error, timeout);
}

}  // namespace squadron
