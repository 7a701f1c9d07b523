// The plain listener beside an HTTPS front door (gateway: { tls: { redirect: HOST:PORT } }):
// every request is answered 308 to the same host and path over https://, so a browser typing
// the bare name lands on TLS with its method and body kept (RFC 9110 §15.4.9).
#pragma once

#include <cstdint>
#include <string>

#include "squadron/http/server.hpp"

namespace squadron::gateway {

// Where a request arriving in plain HTTP goes: https://HOST[:PORT]/path?query, the port left out
// when it is 443; nullopt-like "" when the request names no usable host (then 400).
std::string https_location(const http::Request& req, std::uint16_t https_port);

class HttpsRedirect final : public http::Handler {
 public:
  explicit HttpsRedirect(std::uint16_t https_port) : https_port_(https_port) {}
  bool handle(http::Request& req, http::Response& res, std::size_t worker) override;
  boost::asio::awaitable<void> handle_async(http::Request&, http::Response&, std::size_t) override;
  void on_rejected(int, std::size_t) noexcept override {}

 private:
  std::uint16_t https_port_;
};

}  // namespace squadron::gateway
