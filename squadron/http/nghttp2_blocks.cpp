#include "squadron/http/internal/nghttp2_blocks.hpp"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace squadron::http::internal {

namespace {

// Each block starts with a header of 16 bytes (the caller's part stays 16-byte aligned): its
// capacity. Up to kLargest it is a size class's, 64 << i bytes; past it the block is malloc's.
struct Header {
  std::uint64_t capacity;
  std::uint64_t unused;
};
static_assert(sizeof(Header) == 16);
constexpr std::size_t kSmallest = 64;
constexpr std::size_t kLargest = kSmallest << 4;  // 1 KiB: the last of the five classes

std::size_t capacity_of(std::size_t size_class) noexcept { return kSmallest << size_class; }
std::size_t class_of_capacity(std::size_t capacity) noexcept {
  return static_cast<std::size_t>(std::countr_zero(capacity / kSmallest));
}

Header* header_of(void* p) noexcept {
  return reinterpret_cast<Header*>(static_cast<char*>(p) - sizeof(Header));
}

}  // namespace

void* Nghttp2Blocks::allocate(std::size_t size) {
  std::size_t c = 0;
  while (c < kSizes && capacity_of(c) < size) ++c;
  if (c < kSizes && free_[c] != nullptr) {
    Free* f = free_[c];
    free_[c] = f->next;
    --kept_[c];
    return f;
  }
  const std::size_t capacity = c < kSizes ? capacity_of(c) : size;
  if (capacity > std::numeric_limits<std::size_t>::max() - sizeof(Header)) return nullptr;
  auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + capacity));
  if (h == nullptr) return nullptr;
  h->capacity = capacity;
  return h + 1;
}

void* Nghttp2Blocks::allocate_zeroed(std::size_t n, std::size_t size) {
  if (size != 0 && n > std::numeric_limits<std::size_t>::max() / size) return nullptr;
  void* p = allocate(n * size);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void Nghttp2Blocks::release(void* p) noexcept {
  if (p == nullptr) return;
  Header* h = header_of(p);
  const std::size_t c = h->capacity > kLargest ? kSizes : class_of_capacity(h->capacity);
  if (c == kSizes || kept_[c] >= kKeptPerSize) {
    std::free(h);
    return;
  }
  auto* f = static_cast<Free*>(p);
  f->next = free_[c];
  free_[c] = f;
  ++kept_[c];
}

void* Nghttp2Blocks::reallocate(void* p, std::size_t size) {
  if (p == nullptr) return allocate(size);
  if (size == 0) {
    release(p);
    return nullptr;
  }
  const std::size_t had = header_of(p)->capacity;
  if (size <= had) return p;
  void* q = allocate(size);
  if (q == nullptr) return nullptr;  // p stays as it was (realloc's contract)
  std::memcpy(q, p, had);
  release(p);
  return q;
}

void Nghttp2Blocks::trim() noexcept {
  for (std::size_t c = 0; c < kSizes; ++c) {
    while (free_[c] != nullptr) {
      Free* f = free_[c];
      free_[c] = f->next;
      std::free(header_of(f));
    }
    kept_[c] = 0;
  }
}

std::size_t Nghttp2Blocks::kept() const noexcept {
  std::size_t n = 0;
  for (const std::size_t k : kept_) n += k;
  return n;
}

}  // namespace squadron::http::internal
