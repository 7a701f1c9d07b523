// HTTP/2 towards upstreams without TLS (h2c by prior knowledge, RFC 9113 §3.3): the gateway's
// transport for services with `proxy: { protocol: h2c }` (gRPC). Requests to one upstream share
// its connections as streams (another connection once the peer's SETTINGS_MAX_CONCURRENT_STREAMS
// is reached); nghttp2 frames them (its client session in memory mode, as the server's).
//
//   H2Pool& pool = H2Pool::of(context);        // one per I/O thread, with the context
//   Response res;
//   auto x = co_await pool.exchange({"greeter-1", "127.0.0.1", 5001}, request_bytes,
//                                   {.deadline = now + 15s}, res);
//
// A request comes as the HTTP/1.1 bytes the gateway builds (head and body) and leaves as HEADERS
// and DATA; a streamed body (ExchangeOptions::body) goes on as it arrives, its first 64 KiB kept
// so that a stream the upstream refused (REFUSED_STREAM, or past a GOAWAY's last stream) can go
// again. The answer comes back once its HEADERS arrive: its body, then its trailers (gRPC's
// grpc-status) on the last piece, stream through Response::stream as the upstream sends them,
// the stream's window opened only as they are taken. Outcomes: kRefused when the upstream got
// nothing that it processed (refused connect, refused stream); kFailed after; kTimeout at the
// deadline (the stream is reset: CANCEL).
//
// Thread safety: a pool belongs to the thread of its executor.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>

#include "squadron/http/client.hpp"

namespace squadron::http {

class H2Pool final : public Transport {
 public:
  explicit H2Pool(boost::asio::io_context::executor_type executor);
  ~H2Pool() override;
  // The pool of `context`, made on first use and destroyed with it (as ConnectionPool::of).
  static H2Pool& of(boost::asio::io_context& context);
  H2Pool(const H2Pool&) = delete;
  H2Pool& operator=(const H2Pool&) = delete;

  boost::asio::awaitable<Exchange> exchange(Upstream upstream,
                                            std::span<const boost::asio::const_buffer> request,
                                            const ExchangeOptions& options,
                                            Response& response) override;

  // Connections open (or opening) now, over every upstream; streams open on them.
  std::size_t connections() const noexcept;
  std::size_t streams() const noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace squadron::http
