#include "client.hpp"

#include <csignal>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "squadron/control/state.hpp"

namespace squadron::apps {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

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

std::optional<ControlClient> ControlClient::for_manifest(const control::Manifest& m,
                                                         std::string& why) {
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

HttpResult ControlClient::call(std::string_view method, std::string_view target, std::string body,
                               std::chrono::milliseconds timeout,
                               const std::function<void(std::string_view)>* on_data) const {
  HttpResult out;
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host_, ec);
  if (ec) {
    out.error = "bad control address " + host_;
    return out;
  }
  socket.connect({address, port_}, ec);
  if (ec) {
    out.error = "cannot reach the control API at " + url() + ": " + ec.message();
    return out;
  }
  if (timeout.count() > 0) {  // blocking reads and writes give up after `timeout`
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
  req.set(bhttp::field::host, host_);
  req.set(bhttp::field::user_agent, "squadron-cli");
  if (!token_.empty()) req.set(bhttp::field::authorization, "Bearer " + token_);
  if (method == "POST") {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.keep_alive(false);
  req.prepare_payload();
  bhttp::write(socket, req, ec);
  if (ec) {
    out.error = "cannot send to " + url() + ": " + ec.message();
    return out;
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  // Chunks go straight to the caller; nothing piles up in the body. (Beast keeps a reference
  // to the callback: it lives as long as the parser.)
  auto on_chunk = [on_data](std::uint64_t, std::string_view chunk,
                            boost::system::error_code&) -> std::size_t {
    (*on_data)(chunk);
    return chunk.size();
  };
  if (on_data != nullptr) parser.on_chunk_body(on_chunk);
  bhttp::read(socket, buffer, parser, ec);
  if (ec && ec != bhttp::error::end_of_stream) {
    out.error = "no answer from " + url() + ": " + ec.message();
    if (!parser.is_header_done()) return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  if (on_data != nullptr && !out.body.empty()) (*on_data)(out.body);  // not chunked
  return out;
}

}  // namespace squadron::apps
