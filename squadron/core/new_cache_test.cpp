// The program's operator new when it links squadron::new_cache (as the squadron program does).
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "squadron/core/thread_cache.hpp"

namespace squadron::core {
namespace {

namespace tc = thread_cache;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kReplaced = false;  // a sanitizer's runtime keeps its own operator new
#else
constexpr bool kReplaced = true;
#endif

TEST(NewCache, DeletedObjectsAreKeptForTheNextNewOfTheirSize) {
  if (!kReplaced) GTEST_SKIP() << "sanitized build: the runtime's operator new";
  tc::trim();
  auto* first = new std::string(200, 'x');  // the string and its buffer: two blocks
  const void* buffer = first->data();
  delete first;
  EXPECT_EQ(tc::kept_bytes(), 40u + 216u);
  auto second = std::make_unique<std::string>(210, 'y');  // 211 bytes: the class of 201
  EXPECT_EQ(static_cast<const void*>(second->data()), buffer);
  EXPECT_EQ(tc::kept_bytes(), 0u);

  auto* array = new char[1000];
  delete[] array;                      // without its size: malloc_usable_size tells it
  EXPECT_EQ(tc::kept_bytes(), 1000u);  // 62 x 16 + 8
  auto* again = new char[1000];
  EXPECT_EQ(again, array);
  delete[] again;
  tc::trim();
  EXPECT_EQ(tc::kept_bytes(), 0u);
}

}  // namespace
}  // namespace squadron::core
