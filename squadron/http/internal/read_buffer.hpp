// A connection's read buffer, in pages of its own from the system (mmap) rather than from the
// heap: buffers are pooled while connections are busy, and those a burst of requests needed
// beyond the pool go back to the system when freed instead of leaving holes in the heap (which
// the allocator cannot return, and which would stay in the RSS shared out over the connections
// that remain). Only pages a read touched count in the RSS.
#pragma once

#include <cstddef>
#include <new>
#include <sys/mman.h>
#include <utility>

namespace squadron::http::internal {

class ReadBuffer final {
 public:
  static constexpr std::size_t kBytes = 8 * 1024;

  // A fresh buffer of kBytes; throws std::bad_alloc when the system has none.
  static ReadBuffer make() {
    void* p = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return ReadBuffer(static_cast<char*>(p));
  }
  ReadBuffer() noexcept = default;
  ~ReadBuffer() { reset(); }
  ReadBuffer(ReadBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)) {}
  ReadBuffer& operator=(ReadBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
    }
    return *this;
  }
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  char* get() const noexcept { return data_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  void reset() noexcept {
    if (data_ != nullptr) ::munmap(data_, kBytes);
    data_ = nullptr;
  }

 private:
  explicit ReadBuffer(char* p) noexcept : data_(p) {}
  char* data_ = nullptr;
};

}  // namespace squadron::http::internal
