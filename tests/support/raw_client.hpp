// Test-only HTTP client over a plain blocking socket with deadlines: sends exact bytes (valid or
// not) and reads responses with Boost.Beast's parser, an implementation independent of ours.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace squadron::testing {

struct RawResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool chunked = false;
  std::optional<std::string> header(std::string_view name) const;
};

class RawConnection final {
 public:
  // Connects to 127.0.0.1:port; check ok().
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(RawConnection&& o) noexcept;
  RawConnection& operator=(RawConnection&&) = delete;
  RawConnection(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool send(std::string_view bytes);
  void shutdown_write();
  // Reads one response (HEAD responses: pass head=true). nullopt on close, timeout or garbage.
  std::optional<RawResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::seconds(5), bool head = false);
  // Reads until the peer closes; returns everything read, or nullopt on timeout.
  std::optional<std::string> read_until_close(std::chrono::milliseconds timeout);
  // True if the peer closed (EOF or reset) within `timeout` with nothing more to read.
  bool closed_within(std::chrono::milliseconds timeout);
  // Appends what arrives (one read) to `into`: bytes read, 0 on EOF, -1 on timeout or error.
  // For streams (SSE) that never end.
  int read_some(std::string& into, std::chrono::steady_clock::time_point deadline);

 private:
  int fd_ = -1;
  std::string pending_;  // bytes read past the previous response
};

// A port no one listens on right now on 127.0.0.1 (bound to port 0, then released).
std::uint16_t free_port();

// One request, one response on a fresh connection.
std::optional<RawResponse> fetch(std::uint16_t port, std::string_view method,
                                 std::string_view target, std::string_view extra_headers = {},
                                 std::string_view body = {});

}  // namespace squadron::testing
