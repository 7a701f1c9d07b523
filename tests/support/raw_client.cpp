#include "raw_client.hpp"

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "squadron/http/request.hpp"

namespace squadron::testing {

using SteadyClock = std::chrono::steady_clock;

std::optional<std::string> RawResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (http::iequals(n, name)) return v;
  }
  return std::nullopt;
}

RawConnection::RawConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

RawConnection::RawConnection(RawConnection&& o) noexcept
    : fd_(o.fd_), pending_(std::move(o.pending_)) {
  o.fd_ = -1;
}

bool RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void RawConnection::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

int RawConnection::read_some(std::string& into, SteadyClock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() < 0) return -1;  // a zero timeout still polls once
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno == ECONNRESET ? 0 : -1;
    }
    into.append(buf, static_cast<std::size_t>(n));
    return static_cast<int>(n);
  }
}

std::optional<RawResponse> RawConnection::read_response(std::chrono::milliseconds timeout,
                                                        bool head) {
  namespace http_ = boost::beast::http;
  const auto deadline = SteadyClock::now() + timeout;
  http_::response_parser<http_::string_body> parser;
  parser.body_limit(1ull << 31);
  parser.skip(head);
  parser.eager(true);
  while (true) {
    if (!pending_.empty()) {
      boost::beast::error_code ec;
      const std::size_t used = parser.put(boost::asio::buffer(pending_), ec);
      pending_.erase(0, used);
      if (ec && ec != http_::error::need_more) return std::nullopt;
      if (parser.is_done()) break;
      if (ec == http_::error::need_more || used == 0) {
        // need more bytes
      } else {
        continue;
      }
    }
    std::string more;
    const int n = read_some(more, deadline);
    if (n < 0) return std::nullopt;
    if (n == 0) {
      // EOF: a close-delimited body ends here
      boost::beast::error_code ec;
      parser.put_eof(ec);
      if (!ec && parser.is_header_done()) break;
      return std::nullopt;
    }
    pending_ += more;
  }
  RawResponse r;
  auto msg = parser.release();
  r.status = static_cast<int>(msg.result_int());
  r.body = std::move(msg.body());
  r.chunked = msg.chunked();
  for (const auto& f : msg)
    r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return r;
}

std::optional<std::string> RawConnection::read_until_close(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  std::string all = std::move(pending_);
  pending_.clear();
  while (true) {
    const int n = read_some(all, deadline);
    if (n == 0) return all;
    if (n < 0) return std::nullopt;
  }
}

bool RawConnection::closed_within(std::chrono::milliseconds timeout) {
  auto rest = read_until_close(timeout);
  return rest.has_value();
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

std::optional<RawResponse> fetch(std::uint16_t port, std::string_view method,
                                 std::string_view target, std::string_view extra_headers,
                                 std::string_view body) {
  RawConnection c(port);
  if (!c.ok()) return std::nullopt;
  std::string req;
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  // The address connected to, as curl sends it, unless the caller names its own.
  std::string lower(extra_headers);
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower.rfind("host:", 0) != 0 && lower.find("\nhost:") == std::string::npos)
    req.append("Host: 127.0.0.1:").append(std::to_string(port)).append("\r\n");
  req.append(extra_headers);
  if (!body.empty())
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  req.append("\r\n").append(body);
  if (!c.send(req)) return std::nullopt;
  return c.read_response(std::chrono::seconds(10), method == "HEAD");
}

}  // namespace squadron::testing
