#include "squadron/core/thread_cache.hpp"

#include <cstring>
#include <malloc.h>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace squadron::core {
namespace {

namespace tc = thread_cache;

// Each test starts and ends with this thread's lists empty.
class ThreadCache : public ::testing::Test {
 protected:
  void SetUp() override { tc::trim(); }
  void TearDown() override { tc::trim(); }
};

TEST_F(ThreadCache, AFreedBlockIsTheNextOfItsSizeAndOnlyOfItsSize) {
  void* a = tc::allocate(100);
  std::memset(a, 1, 100);
  tc::release(a, 100);
  EXPECT_EQ(tc::kept_bytes(), 104u);  // 100 bytes are kept as a block of 104 (16k + 8)
  void* b = tc::allocate(200);        // another size: a block of its own
  EXPECT_NE(b, a);
  void* c = tc::allocate(97);  // the same size class as 100
  EXPECT_EQ(c, a);
  EXPECT_EQ(tc::kept_bytes(), 0u);
  tc::release(b, 200);
  tc::release(c, 97);
}

TEST_F(ThreadCache, ABlockFreedWithoutItsSizeGoesWhereItFitsWhole) {
  for (std::size_t size : {1u, 24u, 25u, 100u, 500u, 1000u, 1016u}) {
    void* a = tc::allocate(size);
    ASSERT_GE(::malloc_usable_size(a), size);
    tc::release(a);  // as operator delete(void*) does
    void* b = tc::allocate(size);
    EXPECT_EQ(b, a) << size;
    std::memset(b, 2, size);  // all of it is the caller's (ASan would tell)
    EXPECT_GE(::malloc_usable_size(b), size);
    tc::release(b, size);
    EXPECT_EQ(tc::allocate(size), b) << size;
    tc::release(b);
  }
}

TEST_F(ThreadCache, LargeBlocksGoStraightBack) {
  void* a = tc::allocate(tc::kLargest + 1);
  std::memset(a, 3, tc::kLargest + 1);
  tc::release(a, tc::kLargest + 1);
  EXPECT_EQ(tc::kept_bytes(), 0u);
  void* b = tc::allocate(64 * 1024);
  tc::release(b);
  EXPECT_EQ(tc::kept_bytes(), 0u);
}

TEST_F(ThreadCache, AThreadKeepsAtMostItsShare) {
  const std::size_t n = tc::kKeptBytes / 1000 + 100;  // 100 more than it keeps
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < n; ++i) blocks.push_back(tc::allocate(1000));
  for (void* p : blocks) tc::release(p, 1000);
  EXPECT_LE(tc::kept_bytes(), tc::kKeptBytes);
  EXPECT_GT(tc::kept_bytes(), tc::kKeptBytes - 1000);
}

TEST_F(ThreadCache, TrimUnusedFreesWhatNoAllocationTookSinceTheLastTrim) {
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(tc::allocate(40));
  for (void* p : blocks) tc::release(p, 40);
  EXPECT_EQ(tc::trim_unused(), 0u);  // given back since the last trim: kept a tick more
  EXPECT_EQ(tc::kept_bytes(), 400u);

  // Three are taken and given back during the next tick: the seven left untouched go.
  for (int i = 0; i < 3; ++i) blocks[i] = tc::allocate(40);
  for (int i = 0; i < 3; ++i) tc::release(blocks[i], 40);
  EXPECT_EQ(tc::trim_unused(), 7u * 40);
  EXPECT_EQ(tc::kept_bytes(), 3u * 40);

  // A tick in which none is taken: the rest go.
  EXPECT_EQ(tc::trim_unused(), 3u * 40);
  EXPECT_EQ(tc::kept_bytes(), 0u);
}

// Made before the thread's lists are first used, so ended after they were emptied.
struct AtThreadEnd {
  std::size_t* kept_then = nullptr;
  std::size_t* kept_after_a_release = nullptr;
  ~AtThreadEnd() {
    *kept_then = tc::kept_bytes();
    tc::release(tc::allocate(300), 300);  // goes straight back to malloc now
    *kept_after_a_release = tc::kept_bytes();
  }
};

// What another thread kept after `work`, at its end, and after a release at its end.
struct OtherThread {
  std::size_t kept = 0;
  std::size_t kept_at_end = 1;
  std::size_t kept_after_end = 1;
};
template <typename Work>
OtherThread in_another_thread(Work work) {
  OtherThread seen;
  std::thread other([&] {
    thread_local AtThreadEnd at_end;
    at_end.kept_then = &seen.kept_at_end;
    at_end.kept_after_a_release = &seen.kept_after_end;
    work();
    seen.kept = tc::kept_bytes();
  });
  other.join();
  return seen;
}

TEST_F(ThreadCache, EachThreadHasItsOwnListsAndFreesThemAtItsEnd) {
  void* mine = tc::allocate(300);
  tc::release(mine, 300);
  void* theirs = nullptr;
  const OtherThread seen = in_another_thread([&] {
    theirs = tc::allocate(300);  // not the block this thread kept
    tc::release(theirs, 300);
  });
  EXPECT_NE(theirs, mine);
  EXPECT_EQ(seen.kept, 312u);
  EXPECT_EQ(seen.kept_at_end, 0u);
  EXPECT_EQ(seen.kept_after_end, 0u);
  EXPECT_EQ(tc::kept_bytes(), 312u);
  EXPECT_EQ(tc::allocate(300), mine);
  tc::release(mine, 300);
}

TEST_F(ThreadCache, AThreadThatOnlyFreesEmptiesItsListsAtItsEnd) {
  void* block = tc::allocate(700);  // made here, freed there: it joins that thread's lists
  const OtherThread seen = in_another_thread([&] { tc::release(block, 700); });
  EXPECT_EQ(seen.kept, 712u);
  EXPECT_EQ(seen.kept_at_end, 0u);
  EXPECT_EQ(seen.kept_after_end, 0u);
  EXPECT_EQ(tc::kept_bytes(), 0u);
}

}  // namespace
}  // namespace squadron::core
