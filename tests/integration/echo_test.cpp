#include <random>
#include <sys/resource.h>
#include <thread>

#include <boost/json/parse.hpp>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

using namespace std::chrono_literals;

class Echo : public ServiceTest {
 protected:
  void SetUp() override { start("echo"); }
  boost::json::object json_of(const RawResponse& r) {
    return boost::json::parse(r.body).as_object();
  }
};

TEST_F(Echo, EchoesMethodPathQueryHeadersAndBodySize) {
  auto r = fetch(port_, "PATCH", "/a/b?x=1", "X-Custom: yes\r\n", "12345");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto j = json_of(*r);
  EXPECT_EQ(j.at("method").as_string(), "PATCH");
  EXPECT_EQ(j.at("path").as_string(), "/a/b");
  EXPECT_EQ(j.at("query").as_string(), "x=1");
  EXPECT_EQ(j.at("headers").at("x-custom").as_string(), "yes");
  EXPECT_EQ(j.at("body_bytes").as_int64(), 5);
}

TEST_F(Echo, KeepsTheConnectionAliveAcrossRequests) {
  RawConnection c(port_);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.send("GET /k" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(json_of(*r).at("path").as_string(), "/k" + std::to_string(i));
  }
}

TEST_F(Echo, AnswersPipelinedRequestsInOrder) {
  RawConnection c(port_);
  std::string batch;
  for (int i = 0; i < 20; ++i)
    batch += "GET /p" + std::to_string(i) + "?delay_ms=" + std::to_string(i % 3) +
             " HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 20; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(json_of(*r).at("path").as_string(), "/p" + std::to_string(i));
  }
}

TEST_F(Echo, ReassemblesAChunkedRequestBody) {
  RawConnection c(port_);
  ASSERT_TRUE(
      c.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "4\r\nabcd\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(json_of(*r).at("body_bytes").as_int64(), 20);
}

TEST_F(Echo, HeadGetsHeadersWithoutABody) {
  RawConnection c(port_);
  ASSERT_TRUE(c.send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto head = c.read_response(5s, true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_NE(head->header("Content-Length").value_or("0"), "0");
  auto next = c.read_response();
  ASSERT_TRUE(next) << "the HEAD response must not have carried body bytes";
  EXPECT_EQ(json_of(*next).at("path").as_string(), "/after");
}

TEST_F(Echo, SendsOneHundredContinueBeforeTheBody) {
  RawConnection c(port_);
  ASSERT_TRUE(
      c.send("PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  auto interim = c.read_response(5s);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send("abc"));
  auto final_response = c.read_response();
  ASSERT_TRUE(final_response);
  EXPECT_EQ(final_response->status, 200);
  EXPECT_EQ(json_of(*final_response).at("body_bytes").as_int64(), 3);
}

TEST_F(Echo, RefusesAOneGibBodyFromItsHeadersWithoutGrowing) {
  fetch(port_, "GET", "/warm");
  const long before = proc_->rss_kib();
  RawConnection c(port_);
  ASSERT_TRUE(c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741824\r\n\r\n"));
  c.send(std::string(256 * 1024, 'x'));  // the server may already have closed: ignore errors
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->header("Content-Type").value_or(""), "application/problem+json");
  EXPECT_TRUE(c.closed_within(5s));
  const long after = proc_->rss_kib();
  EXPECT_LT(after - before, 4 * 1024)
      << "RSS grew from " << before << " KiB to " << after << " KiB";
}

TEST_F(Echo, AnswersTooLargeHeadersAndTooLongUrls) {
  auto big_header = fetch(port_, "GET", "/", "X-Big: " + std::string(70 * 1024, 'h') + "\r\n");
  ASSERT_TRUE(big_header);
  EXPECT_EQ(big_header->status, 431);
  std::string many;
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(fetch(port_, "GET", "/", many)->status, 431);
  EXPECT_EQ(fetch(port_, "GET", "/" + std::string(9000, 'u'))->status, 414);
}

TEST_F(Echo, RejectsAmbiguousFramingAndCloses) {
  RawConnection c(port_);
  ASSERT_TRUE(
      c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->header("Connection").value_or(""), "close");
  EXPECT_TRUE(c.closed_within(5s)) << "the smuggled request must never be answered";
}

TEST_F(Echo, ServesOthersWhileAThousandConnectionsIdle) {
  std::vector<RawConnection> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.emplace_back(port_);
    ASSERT_TRUE(idle.back().ok()) << i;
  }
  auto r = fetch(port_, "GET", "/still-here");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // and the idle ones still work
  ASSERT_TRUE(idle[500].send("GET /idle HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto late = idle[500].read_response();
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 200);
}

TEST_F(Echo, ServesASlowSenderAndOthersMeanwhile) {
  const std::string req = "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody";
  RawConnection slow(port_);
  for (std::size_t i = 0; i < req.size(); ++i) {
    ASSERT_TRUE(slow.send(req.substr(i, 1)));
    if (i % 10 == 0) {
      auto other = fetch(port_, "GET", "/other");
      ASSERT_TRUE(other);
      EXPECT_EQ(other->status, 200);
    }
    std::this_thread::sleep_for(2ms);  // the client's pace, not synchronisation
  }
  auto r = slow.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(json_of(*r).at("body_bytes").as_int64(), 4);
}

TEST_F(Echo, DelaysWithoutHoldingTheThread) {
  RawConnection slow(port_);
  ASSERT_TRUE(slow.send("GET /wait?delay_ms=3000 HTTP/1.1\r\nHost: t\r\n\r\n"));
  // The one I/O thread is free while the slow request waits: another client is answered first.
  auto quick = fetch(port_, "GET", "/quick");
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->status, 200);
  EXPECT_FALSE(slow.read_response(0ms)) << "the slow answer came before its delay";
  auto r = slow.read_response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(fetch(port_, "GET", "/x?delay_ms=lots")->status, 400);
}

TEST_F(Echo, NeverCrashesOrHangsOnTenThousandRandomInputs) {
  std::mt19937 rng(20261125);
  const std::vector<std::string> seeds = {
      "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
      "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  };
  int answered = 0, closed = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string input;
    if (i % 2 == 0) {
      input.resize(rng() % 200);
      for (auto& ch : input) ch = static_cast<char>(rng() % 256);
    } else {
      input = seeds[rng() % seeds.size()];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !input.empty(); ++e)
        input[rng() % input.size()] = static_cast<char>(rng() % 256);
    }
    RawConnection c(port_);
    ASSERT_TRUE(c.ok()) << "connect failed at input " << i;
    c.send(input);
    c.shutdown_write();
    auto rest = c.read_until_close(5s);
    ASSERT_TRUE(rest) << "the server hung on input " << i;
    if (rest->empty()) {
      ++closed;
    } else {
      ++answered;
      ASSERT_EQ(rest->rfind("HTTP/1.1 ", 0), 0u)
          << "input " << i << " got: " << rest->substr(0, 60);
    }
  }
  EXPECT_GT(answered, 0);
  EXPECT_TRUE(proc_->running());
  EXPECT_EQ(fetch(port_, "GET", "/healthz")->status, 200);
}

class EchoTimeouts : public ServiceTest {};

TEST_F(EchoTimeouts, AnIncompleteHeadGets408AfterTheHeaderTimeout) {
  start("echo", {"--header-timeout", "300ms"});
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET /slowloris HTTP/1.1\r\nHost: t\r\nX-A: "));
  auto r = c.read_response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c.closed_within(5s));
  proc_->signal(SIGTERM);
  EXPECT_EQ(proc_->wait_exit(10s), 0);
}

TEST_F(EchoTimeouts, IdleKeepAliveConnectionsAreClosed) {
  start("echo", {"--idle-timeout", "300ms"});
  RawConnection c(port_);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(c.read_response());
  EXPECT_TRUE(c.closed_within(5s));
  proc_->signal(SIGTERM);
  EXPECT_EQ(proc_->wait_exit(10s), 0);
}

}  // namespace
}  // namespace squadron::testing

int main(int argc, char** argv) {
  // 1,000 idle connections need more descriptors than the usual soft limit of 1024 on either side.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 4096) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 4096);
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
