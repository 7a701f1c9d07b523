// One HTTP/2 connection of the server (RFC 9113), framed and HPACK-coded by nghttp2: each stream
// becomes a Request for the connection's Handler, exactly as an HTTP/1.1 request would (its head
// is handed to the same RequestParser, so the same limits and checks apply), and its Response
// goes back as HEADERS and DATA. The connection's bytes go through TLS when it speaks it.
//
// Two coroutines share the connection: the reader (run(): socket -> nghttp2, which calls back to
// start streams) and the writer (nghttp2 -> socket), which wakes when a handler has answered, a
// body piece is ready, or a window opened, so that the answers of one turn of the event loop
// leave in one send. Handlers run as coroutines of their own; the connection ends when the
// reader and writer are done and no handler still runs.
//
// Limits (ServerConfig::http2): concurrent streams, counting handlers of reset streams; flow
// control windows consumed only as handlers read the body; the header list's size and count
// (ParserLimits) before anything is kept (HPACK bombs); CONTINUATION frames per header block
// (nghttp2's, 8); a budget of frames that make no progress (floods of PING, SETTINGS, resets,
// empty DATA): past any of them the client gets GOAWAY and the connection closes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nghttp2/nghttp2.h>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "squadron/http/internal/connection.hpp"
#include "squadron/http/server.hpp"

namespace squadron::http::internal {

// What a server thread lends its HTTP/2 connections.
class H2Host {
 public:
  virtual boost::asio::io_context& h2_context() noexcept = 0;
  virtual std::size_t h2_worker() const noexcept = 0;
  virtual std::string_view h2_date() = 0;                       // the Date field's value, now
  virtual SteadyClock::time_point h2_now() const noexcept = 0;  // the thread's coarse clock
  virtual bool h2_stopping() const noexcept = 0;

 protected:
  ~H2Host() = default;
};

struct H2Stream;

class H2Connection final {
 public:
  // `buffer` and `cipher` (kReadBufferBytes each; cipher only on TLS) are the connection's read
  // buffers for its life.
  H2Connection(Connection& conn, H2Host& host, const ServerConfig& config, char* buffer,
               char* cipher);
  ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Whether `bytes`, a connection's first, begin HTTP/2's client preface (h2c by prior knowledge;
  // fewer bytes than the preface: they match its start).
  static bool starts_preface(std::string_view bytes) noexcept;

  // Serves until the connection ends (the client closed, failed, went quiet past the idle
  // timeout, or the server stopped) and every handler it started has returned. `first`: bytes
  // already read (plaintext), the start of the preface.
  boost::asio::awaitable<void> run(std::string_view first);

  // The server stops: GOAWAY (streams already begun finish; no new ones), then the connection
  // closes once they have.
  void shutdown();

  // Streams open now (the gateway's and tests' view).
  std::size_t streams() const noexcept { return open_streams_; }

  // Quiet for a tick with no stream (the server's sweeper): what the connection only needs while
  // it serves goes — its spare stream records, its strings' capacity, and the pages of its read
  // buffers (madvise: they come back zeroed on the next read). nghttp2's session (its HPACK
  // tables) stays. Once per quiet spell.
  void trim_idle() noexcept;

 private:
  friend struct H2Callbacks;
  friend class H2Body;
  friend class H2Tunnel;

  bool receive(std::string_view bytes);
  void produce();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<bool> write_out();
  // The rest of a stream's handling after its handler's synchronous part (H2Stream::handled: it
  // answered there): its asynchronous part, the answer, the answer's streamed body.
  boost::asio::awaitable<void> run_stream(H2Stream& s);
  boost::asio::awaitable<void> pump(H2Stream& s);
  // A WebSocket over HTTP/2 (RFC 8441's extended CONNECT), its instance's 101 answered with 200:
  // `upgraded` has the stream's DATA both ways while pump() sends what it writes.
  boost::asio::awaitable<void> tunnel(H2Stream& s, UpgradeHandler upgraded);
  // The extended CONNECT of `s` as HTTP/1.1's WebSocket handshake, for the same parser and the
  // handler's usual upgrade path: its fields added to split_; false when refused (answered
  // already).
  bool connect_head(H2Stream& s);
  // Until notify(signal), or `until`.
  boost::asio::awaitable<void> wait(std::unique_ptr<boost::asio::steady_timer>& signal,
                                    SteadyClock::time_point until = SteadyClock::time_point::max());
  static void notify(std::unique_ptr<boost::asio::steady_timer>& signal);

  H2Stream& open_stream(std::int32_t id);
  void erase_if_done(H2Stream& s);
  void headers_done(H2Stream& s, bool end_stream);
  void dispatch(H2Stream& s);
  void start_streams();  // the handlers dispatch() readied during the last read
  void start(H2Stream& s);
  // The handler's answer submitted; true when its body streams (pump() sends it).
  bool respond(H2Stream& s);
  void reject(H2Stream& s, int status, std::string_view detail);
  void submit(H2Stream& s, Response& res, bool head_only);
  void consume(H2Stream& s, std::size_t n);
  // Counts a frame that made no progress (`cost` of them); false when the budget is spent (the
  // session is then being terminated).
  bool glitch(double cost = 1);
  void terminate(std::uint32_t error_code);
  void update_deadline();
  void wake_writer() { notify(writer_signal_); }

  Connection& conn_;
  H2Host& host_;
  const ServerConfig& config_;
  char* buffer_;
  char* cipher_;
  nghttp2_session* session_ = nullptr;
  std::vector<H2Stream*> starting_;  // dispatched in the read being processed
  H2Stream* live_ = nullptr;  // the streams not yet erased, newest first (each owned by the list)
  std::vector<std::unique_ptr<H2Stream>> spare_;  // finished streams' records, for reuse
  std::size_t open_streams_ = 0;                  // streams the session has open
  std::size_t running_ = 0;                       // handlers running (reset streams' included)
  std::size_t reading_ = 0;                       // body reads in progress (H2Body::read)
  std::uint64_t key_seed_ = 0;                    // the Sec-WebSocket-Keys of its extended CONNECTs
  std::vector<Header> split_;    // a request's fields, for its parser (RequestParser::feed_split)
  char ws_key_[25] = {};         // an extended CONNECT's Sec-WebSocket-Key, while split_ has it
  std::string arena_;            // an answer's field names in lower case, for nghttp2
  std::vector<nghttp2_nv> nva_;  // an answer's fields, for nghttp2
  std::string out_;              // frames nghttp2 produced, not yet sent
  std::string cipher_out_;       // their TLS records while a write waits
  std::unique_ptr<boost::asio::steady_timer> writer_signal_;
  std::unique_ptr<boost::asio::steady_timer> done_signal_;  // a handler or the writer ended
  double glitch_tokens_ = 0;
  SteadyClock::time_point glitch_time_{};
  SteadyClock::time_point last_busy_{};  // when a stream last opened
  SteadyClock::time_point read_deadline_ = SteadyClock::time_point::max();
  SteadyClock::time_point write_deadline_ = SteadyClock::time_point::max();
  bool writer_running_ = false;
  bool writing_ = false;     // a write is in progress
  bool terminated_ = false;  // GOAWAY with an error (or after the idle timeout) is on its way
  bool goaway_ = false;      // the server stops: GOAWAY sent, streams before it finish
  bool dead_ = false;        // the socket failed or the reader ended: nothing more is sent
  bool trimmed_ = false;     // trim_idle() ran since the last stream opened
};

}  // namespace squadron::http::internal
