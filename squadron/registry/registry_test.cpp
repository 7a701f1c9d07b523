#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "squadron/registry/memory_registry.hpp"

namespace squadron::registry {
namespace {

using namespace std::chrono_literals;

Instance make(std::string id, State s = State::kStarting) {
  Instance i;
  i.service = id.substr(0, id.rfind('-'));
  i.id = std::move(id);
  i.pid = 42;
  i.port = 8081;
  i.state = s;
  i.revision = "1";
  return i;
}

TEST(Registry, RevisionGrowsOnlyOnChange) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor());
  EXPECT_EQ(reg.revision(), 0u);
  reg.upsert(make("hello-1"));
  EXPECT_EQ(reg.revision(), 1u);
  reg.upsert(make("hello-1"));  // same: no news
  EXPECT_EQ(reg.revision(), 1u);
  reg.upsert(make("hello-1", State::kReady));
  EXPECT_EQ(reg.revision(), 2u);
  reg.erase("hello-1");
  EXPECT_EQ(reg.revision(), 3u);
  reg.erase("hello-1");
  EXPECT_EQ(reg.revision(), 3u);
}

TEST(Registry, ARevisionsStartMovesOnlyForward) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor());
  reg.start_after(7ull << 32);
  EXPECT_EQ(reg.revision(), 7ull << 32);
  reg.upsert(make("a-1"));
  EXPECT_EQ(reg.revision(), (7ull << 32) + 1);
  reg.start_after(5);  // never back
  EXPECT_EQ(reg.revision(), (7ull << 32) + 1);
}

TEST(Registry, InstancesSortByServiceThenNumber) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor());
  for (const char* id : {"web-10", "api-2", "web-9", "web-1"}) reg.upsert(make(id));
  std::vector<std::string> ids;
  for (const auto& i : reg.instances()) ids.push_back(i.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"api-2", "web-1", "web-9", "web-10"}));
}

TEST(Registry, JsonRoundTrips) {
  auto i = make("hello-3", State::kBackoff);
  i.restarts = 4;
  i.last_exit = "exit 3";
  i.started_at = std::chrono::system_clock::time_point(1'700'000'000'000ms);
  const auto j = to_json(i, i.started_at + 5s);
  EXPECT_EQ(j.at("address").as_string(), "127.0.0.1:8081");
  EXPECT_EQ(j.at("uptime_s").as_int64(), 0);  // in backoff: not running
  const auto back = instance_from_json(j);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, i);
  i.state = State::kReady;
  EXPECT_EQ(to_json(i, i.started_at + 5s).at("uptime_s").as_int64(), 5);
}

TEST(Registry, BadJsonIsRefusedNotThrown) {
  EXPECT_FALSE(instance_from_json(boost::json::parse("[]")));
  EXPECT_FALSE(instance_from_json(boost::json::parse(R"({"service":"a"})")));
  EXPECT_FALSE(instance_from_json(
      boost::json::parse(R"({"service":"a","id":"a-1","host":"h","port":70000,"state":"ready"})")));
  EXPECT_FALSE(instance_from_json(
      boost::json::parse(R"({"service":"a","id":"a-1","host":"h","port":80,"state":"dancing"})")));
  EXPECT_FALSE(instance_from_json(boost::json::parse(  // found by the fuzzer: ns overflow
      R"({"service":"a","id":"a-1","host":"h","port":80,"state":"ready",)"
      R"("started_at_ms":9700000000000})")));
  EXPECT_TRUE(instance_from_json(
      boost::json::parse(R"({"service":"a","id":"a-1","host":"h","port":80,"state":"ready"})")));
}

TEST(Registry, EventsAreBoundedAndFilteredByRevision) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor(), 3);
  for (int n = 0; n < 5; ++n) reg.record("hello", "", "event " + std::to_string(n));
  const auto all = reg.events_since(0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all.front().message, "event 2");
  EXPECT_EQ(reg.events_since(4).size(), 1u);
}

TEST(Registry, WatchReturnsAtOnceWhenAlreadyNewer) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor());
  reg.upsert(make("hello-1"));
  std::uint64_t got = 0;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { got = co_await reg.wait_newer(0, 1h); },
      boost::asio::detached);
  io.run_for(1s);  // would hang for an hour if it waited
  EXPECT_EQ(got, 1u);
}

TEST(Registry, WatchWakesOnChange) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor());
  std::uint64_t got = 0;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { got = co_await reg.wait_newer(0, 1h); },
      boost::asio::detached);
  io.poll();
  EXPECT_EQ(reg.watchers(), 1u);
  EXPECT_EQ(got, 0u);
  reg.upsert(make("hello-1"));
  io.run_for(1s);
  EXPECT_EQ(got, 1u);
  EXPECT_EQ(reg.watchers(), 0u);
}

TEST(Registry, WatchTimesOutWithTheSameRevision) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor());
  reg.upsert(make("hello-1"));
  std::uint64_t got = 99;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { got = co_await reg.wait_newer(1, 1ms); },
      boost::asio::detached);
  io.run_for(1s);
  EXPECT_EQ(got, 1u);
}

TEST(Registry, AWatcherDestroyedWithoutResumingIsUnlisted) {
  std::optional<boost::asio::io_context> io;
  io.emplace();
  MemoryRegistry reg(io->get_executor());
  boost::asio::co_spawn(
      *io, [&]() -> boost::asio::awaitable<void> { co_await reg.wait_newer(0, 1h); },
      boost::asio::detached);
  io->poll();
  EXPECT_EQ(reg.watchers(), 1u);
  io.reset();  // the suspended coroutine's frame is destroyed with the io_context
  EXPECT_EQ(reg.watchers(), 0u);
  reg.upsert(make("hello-1"));  // must not touch the dead timer
}

TEST(Registry, CloseWakesWatchersAndLaterWaitsReturnAtOnce) {
  boost::asio::io_context io;
  MemoryRegistry reg(io.get_executor());
  int done = 0;
  auto wait = [&]() -> boost::asio::awaitable<void> {
    co_await reg.wait_newer(0, 1h);
    ++done;
  };
  boost::asio::co_spawn(io, wait(), boost::asio::detached);
  io.poll();
  EXPECT_EQ(done, 0);
  reg.close();
  io.run_for(1s);
  EXPECT_EQ(done, 1);
  io.restart();
  boost::asio::co_spawn(io, wait(), boost::asio::detached);
  io.run_for(1s);  // would take an hour if it waited
  EXPECT_EQ(done, 2);
}

TEST(Registry, AWatcherMayOutliveTheRegistry) {
  boost::asio::io_context io;
  auto reg = std::make_unique<MemoryRegistry>(io.get_executor());
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { co_await reg->wait_newer(0, 1h); },
      boost::asio::detached);
  io.poll();
  reg.reset();  // the coroutine is still suspended; its frame goes with `io`, after this
}

}  // namespace
}  // namespace squadron::registry
