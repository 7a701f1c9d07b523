#include "client.hpp"

#include <csignal>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "squadron/cluster/election.hpp"
#include "squadron/cluster/etcd_client.hpp"
#include "squadron/cluster/keys.hpp"
#include "squadron/control/state.hpp"
#include "squadron/core/spawn.hpp"
#include "squadron/gateway/follower.hpp"
#include "squadron/http/client.hpp"

namespace squadron::apps {

namespace asio = boost::asio;

std::string HttpResult::explain() const {
  if (status == 0) return error;
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const auto* d = v.as_object().if_contains("detail"); d != nullptr && d->is_string())
      return std::string(d->as_string());
  }
  return "HTTP " + std::to_string(status) + ": " + body;
}

namespace {

asio::awaitable<void> read_leader(cluster::EtcdClient& etcd, std::string key,
                                  cluster::EtcdResult<cluster::RangeAnswer>& out) {
  out = co_await etcd.get(key);
}

// A cluster fleet's control API: the leading server's, as etcd names it (any server would do:
// a standby forwards to the leader).
std::optional<ControlClient> for_cluster(const control::Manifest& m, std::string& why) {
  cluster::EtcdOptions options;
  for (const auto& text : m.cluster->etcd) {
    std::string error;
    if (auto member = cluster::parse_member(text, error)) options.members.push_back(*member);
  }
  options.request_timeout = std::chrono::seconds(2);
  asio::io_context io;
  cluster::EtcdClient etcd(io.get_executor(), options);
  cluster::EtcdResult<cluster::RangeAnswer> answer = cluster::EtcdError{};
  core::spawn(io, read_leader(etcd, cluster::Keys(m.name).leader(), answer), "the leader's read");
  io.run();
  if (answer.has_error()) {
    why = "cannot ask etcd which server leads fleet " + m.name + ": " + answer.error().message;
    return std::nullopt;
  }
  if (answer->kvs.empty()) {
    why = "no server leads fleet " + m.name + ": start one with `squadron -f " + m.file.string() +
          " server --name s1`";
    return std::nullopt;
  }
  const auto leader = cluster::parse_leader(answer->kvs.front().value);
  gateway::WatchTarget at;
  if (!leader || !gateway::parse_control_url(leader->url, at)) {
    why = "etcd names no usable leader for fleet " + m.name;
    return std::nullopt;
  }
  auto token = control::read_token(control::StateDir(m.dir()).token());
  return ControlClient(at.host, at.port, token.value_or(""));
}

}  // namespace

std::optional<ControlClient> ControlClient::for_manifest(const control::Manifest& m,
                                                         std::string& why) {
  if (m.cluster) return for_cluster(m, why);
  const control::StateDir dir(m.dir());
  const std::string start = "start it with `squadron up -d -f " + m.file.string() + "`";
  {
    // The running fleet holds the lock; if it is free, run.json is a leftover of a crash.
    std::error_code ec;
    const int fd = control::try_lock(dir.lock(), ec);
    if (fd >= 0) {
      ::close(fd);
      why = "no fleet is running for " + m.file.string() + "; " + start;
      return std::nullopt;
    }
  }
  const auto run = control::load_run_info(dir.run());
  if (!run) {
    why = "no fleet is running for " + m.file.string() + "; " + start;
    return std::nullopt;
  }
  if (run->pid <= 0 || (::kill(run->pid, 0) != 0 && errno == ESRCH)) {
    why = "the fleet of " + m.file.string() + " is gone (pid " + std::to_string(run->pid) +
          " exited); " + start;
    return std::nullopt;
  }
  // "http://HOST:PORT"
  std::string_view url = run->control_url;
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) == kScheme) url.remove_prefix(kScheme.size());
  const auto colon = url.rfind(':');
  int port = 0;
  if (colon != std::string_view::npos) port = std::atoi(std::string(url.substr(colon + 1)).c_str());
  if (colon == std::string_view::npos || port <= 0 || port > 65535) {
    why = dir.run().string() + ": malformed control URL \"" + run->control_url + "\"";
    return std::nullopt;
  }
  std::string host(url.substr(0, colon));
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "::") host = "::1";
  auto token = control::read_token(dir.token());
  return ControlClient(host, static_cast<std::uint16_t>(port), token.value_or(""), run->pid);
}

HttpResult ControlClient::get(std::string_view target, std::chrono::milliseconds timeout) const {
  return call("GET", target, "", timeout, nullptr);
}

HttpResult ControlClient::post(std::string_view target, std::string body,
                               std::chrono::milliseconds timeout) const {
  return call("POST", target, std::move(body), timeout, nullptr);
}

HttpResult ControlClient::stream(std::string_view target,
                                 const std::function<void(std::string_view)>& on_data) const {
  return call("GET", target, "", std::chrono::milliseconds(0), &on_data);
}

namespace {

// One call over the pool, on the caller's io_context; chunks of a streamed answer go to
// `on_data` as they arrive.
asio::awaitable<void> call_async(http::ConnectionPool& pool, std::string host, std::uint16_t port,
                                 std::string url, std::string method, std::string target,
                                 std::string body, std::string authorization,
                                 std::chrono::milliseconds timeout,
                                 const std::function<void(std::string_view)>* on_data,
                                 HttpResult& out) {
  std::vector<std::pair<std::string_view, std::string_view>> fields{{"User-Agent", "squadron-cli"},
                                                                    {"Connection", "close"}};
  if (!authorization.empty()) fields.emplace_back("Authorization", authorization);
  if (method == "POST") fields.emplace_back("Content-Type", "application/json");
  http::SimpleRequest request;
  request.method = method;
  request.target = target;
  request.fields = fields;
  request.body = body;
  request.deadline = timeout.count() > 0 ? std::chrono::steady_clock::now() + timeout
                                         : std::chrono::steady_clock::time_point::max();
  request.connect_timeout = std::chrono::seconds(5);
  request.stream_above = on_data != nullptr ? 1 : 64 * 1024 * 1024;
  http::Response res;
  const auto x = co_await pool.send(host, port, request, res);
  if (x.outcome != http::Outcome::kAnswered) {
    const bool unreachable =
        x.outcome == http::Outcome::kRefused || x.outcome == http::Outcome::kConnectTimeout;
    out.error = (unreachable ? "cannot reach the control API at " : "no answer from ") + url +
                ": " + x.error;
    co_return;
  }
  out.status = res.status;
  out.body = std::move(res.body);
  if (on_data != nullptr && !out.body.empty()) (*on_data)(std::exchange(out.body, {}));
  if (!res.stream) co_return;
  while (true) {  // a streamed answer: to on_data, or gathered into the body
    auto piece = co_await res.stream();
    if (!piece.data.empty()) {
      if (on_data != nullptr) {
        (*on_data)(piece.data);
      } else {
        out.body += piece.data;
      }
    }
    if (piece.failed()) out.error = piece.error;
    if (piece.end) co_return;
  }
}

}  // namespace

HttpResult ControlClient::call(std::string_view method, std::string_view target, std::string body,
                               std::chrono::milliseconds timeout,
                               const std::function<void(std::string_view)>* on_data) const {
  HttpResult out;
  asio::io_context io;
  http::ConnectionPool pool(io.get_executor(), 0);
  core::spawn(
      io,
      call_async(pool, host_, port_, url(), std::string(method), std::string(target),
                 std::move(body), token_.empty() ? "" : "Bearer " + token_, timeout, on_data, out),
      "the control API call");
  io.run();
  return out;
}

}  // namespace squadron::apps
