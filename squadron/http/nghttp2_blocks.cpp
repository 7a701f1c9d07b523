#include "squadron/http/internal/nghttp2_blocks.hpp"

#include <cstring>
#include <limits>
#include <malloc.h>
#include <new>

#include "squadron/core/thread_cache.hpp"

namespace squadron::http::internal {

namespace {

namespace tc = core::thread_cache;

// nghttp2 wants null when memory runs out, not an exception.
void* allocate(std::size_t size, void*) noexcept {
  try {
    return tc::allocate(size);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void release(void* p, void*) noexcept { tc::release(p); }

void* allocate_zeroed(std::size_t n, std::size_t size, void* user) noexcept {
  if (size != 0 && n > std::numeric_limits<std::size_t>::max() / size) return nullptr;
  void* p = allocate(n * size, user);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* reallocate(void* p, std::size_t size, void* user) noexcept {
  if (p == nullptr) return allocate(size, user);
  if (size == 0) {
    release(p, user);
    return nullptr;
  }
  const std::size_t had = ::malloc_usable_size(p);  // every block is malloc's
  if (size <= had) return p;
  void* q = allocate(size, user);
  if (q == nullptr) return nullptr;  // p stays as it was (realloc's contract)
  std::memcpy(q, p, had);
  release(p, user);
  return q;
}

nghttp2_mem blocks{nullptr, allocate, release, allocate_zeroed, reallocate};

}  // namespace

nghttp2_mem* nghttp2_blocks() noexcept { return &blocks; }

}  // namespace squadron::http::internal
