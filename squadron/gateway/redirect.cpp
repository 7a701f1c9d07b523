#include "squadron/gateway/redirect.hpp"

#include <fmt/format.h>

namespace squadron::gateway {

namespace {

// A Host field's name part: a registered name or an IPv4 address (its port dropped), or an IPv6
// literal in brackets; "" when it is anything else (a Location must not carry what a client
// smuggled into it).
std::string host_name_of(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return {};
    for (char ch : host.substr(1, close - 1)) {
      if (!(std::isxdigit(static_cast<unsigned char>(ch)) || ch == ':' || ch == '.')) return {};
    }
    return std::string(host.substr(0, close + 1));
  }
  host = host.substr(0, host.find(':'));
  for (char ch : host) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.')) return {};
  }
  return std::string(host);
}

}  // namespace

std::string https_location(const http::Request& req, std::uint16_t https_port) {
  const auto host_field = req.header("host");
  if (!host_field) return {};
  const std::string host = host_name_of(*host_field);
  if (host.empty()) return {};
  std::string location = "https://" + host;
  if (https_port != 443) location += fmt::format(":{}", https_port);
  location.append(req.target());  // origin-form: the path and query as sent
  return location;
}

bool HttpsRedirect::handle(http::Request& req, http::Response& res, std::size_t) {
  const std::string location = https_location(req, https_port_);
  if (location.empty() || req.target().empty() || req.target().front() != '/') {
    res = http::Response::problem(400,
                                  "a request for the https:// redirect needs a Host field "
                                  "with a name or an address");
    return true;
  }
  res = http::Response::text("");
  res.status = 308;
  res.set_header("Location", location);
  return true;
}

boost::asio::awaitable<void> HttpsRedirect::handle_async(http::Request&, http::Response&,
                                                         std::size_t) {
  co_return;  // handle() always answers
}

}  // namespace squadron::gateway
