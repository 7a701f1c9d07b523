#include "squadron/supervisor/grpc_health.hpp"

#include <cstdint>

namespace squadron::supervisor {

namespace {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A varint at `at`, advanced past it; nullopt when cut short or longer than ten bytes.
std::optional<std::uint64_t> get_varint(std::string_view in, std::size_t& at) noexcept {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 70 && at < in.size(); shift += 7) {
    const auto b = static_cast<unsigned char>(in[at++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string health_check_request(std::string_view authority, std::string_view service) {
  std::string message;  // HealthCheckRequest: field 1 (service), length-delimited
  if (!service.empty()) {
    message.push_back(0x0a);
    put_varint(message, service.size());
    message.append(service);
  }
  std::string body(5, '\0');  // not compressed, then the length, big-endian
  const auto n = static_cast<std::uint32_t>(message.size());
  body[1] = static_cast<char>(n >> 24);
  body[2] = static_cast<char>(n >> 16);
  body[3] = static_cast<char>(n >> 8);
  body[4] = static_cast<char>(n);
  body += message;
  std::string out = "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: ";
  out.append(authority);
  out.append(
      "\r\nContent-Type: application/grpc\r\nTE: trailers\r\nUser-Agent: squadron-probe\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  out += body;
  return out;
}

std::optional<int> health_status(std::string_view body) noexcept {
  if (body.size() < 5 || body[0] != 0) return std::nullopt;  // compressed: not asked for
  const std::uint32_t n = (static_cast<std::uint32_t>(static_cast<unsigned char>(body[1])) << 24) |
                          (static_cast<std::uint32_t>(static_cast<unsigned char>(body[2])) << 16) |
                          (static_cast<std::uint32_t>(static_cast<unsigned char>(body[3])) << 8) |
                          static_cast<std::uint32_t>(static_cast<unsigned char>(body[4]));
  if (body.size() - 5 < n) return std::nullopt;
  const std::string_view message = body.substr(5, n);
  int status = 0;
  for (std::size_t at = 0; at < message.size();) {
    const auto key = get_varint(message, at);
    if (!key) return std::nullopt;
    const auto field = *key >> 3;
    switch (*key & 7) {
      case 0: {  // varint
        const auto v = get_varint(message, at);
        if (!v) return std::nullopt;
        if (field == 1) status = static_cast<int>(*v & 0x7fffffff);
        break;
      }
      case 1:  // 64-bit
        if (message.size() - at < 8) return std::nullopt;
        at += 8;
        break;
      case 2: {  // length-delimited: skipped
        const auto len = get_varint(message, at);
        if (!len || message.size() - at < *len) return std::nullopt;
        at += static_cast<std::size_t>(*len);
        break;
      }
      case 5:  // 32-bit
        if (message.size() - at < 4) return std::nullopt;
        at += 4;
        break;
      default:
        return std::nullopt;
    }
  }
  return status;
}

}  // namespace squadron::supervisor
