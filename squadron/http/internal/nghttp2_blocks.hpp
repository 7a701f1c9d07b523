// nghttp2's memory for one session (its nghttp2_mem), from free lists of the session's own.
// Every request makes and frees again a stream record, the header blocks HPACK decodes into, a
// queued frame and the copy of the answer's fields: five allocations a request through the
// gateway, which glibc's malloc serves slowly with ~1,600 requests in flight (it sorts its
// unsorted bins: malloc and free were 16 % of the gateway's instructions, bench/h2_ir.sh). A
// block of up to 1 KiB goes back to the list of its size and is taken again by the next stream;
// the lists are emptied when the connection is quiet for a tick (trim()) and at its end.
// Not part of squadron/http's API. One thread (the session's).
#pragma once

#include <array>
#include <cstddef>
#include <nghttp2/nghttp2.h>

namespace squadron::http::internal {

class Nghttp2Blocks final {
 public:
  // Blocks kept per size (64, 128, 256, 512 and 1,024 bytes) at most: 250 KiB in all.
  static constexpr std::size_t kKeptPerSize = 128;

  Nghttp2Blocks() = default;
  ~Nghttp2Blocks() { trim(); }
  Nghttp2Blocks(const Nghttp2Blocks&) = delete;
  Nghttp2Blocks& operator=(const Nghttp2Blocks&) = delete;

  // For nghttp2_session_*_new3 (which copies it).
  nghttp2_mem* mem() noexcept { return &mem_; }
  // Frees the blocks kept for reuse.
  void trim() noexcept;
  // Blocks kept for reuse now (tests).
  std::size_t kept() const noexcept;

  void* allocate(std::size_t size);
  void release(void* p) noexcept;
  void* reallocate(void* p, std::size_t size);

 private:
  static constexpr std::size_t kSizes = 5;
  struct Free {
    Free* next;
  };
  std::array<Free*, kSizes> free_{};
  std::array<std::size_t, kSizes> kept_{};
  nghttp2_mem mem_{this,
                   [](std::size_t size, void* self) {
                     return static_cast<Nghttp2Blocks*>(self)->allocate(size);
                   },
                   [](void* p, void* self) { static_cast<Nghttp2Blocks*>(self)->release(p); },
                   [](std::size_t n, std::size_t size, void* self) {
                     return static_cast<Nghttp2Blocks*>(self)->allocate_zeroed(n, size);
                   },
                   [](void* p, std::size_t size, void* self) {
                     return static_cast<Nghttp2Blocks*>(self)->reallocate(p, size);
                   }};

  void* allocate_zeroed(std::size_t n, std::size_t size);
};

}  // namespace squadron::http::internal
