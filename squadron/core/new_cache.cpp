// The program's operator new and delete, from squadron::core::thread_cache. Linked only into the
// programs that ask for it (squadron::new_cache), and left out of sanitized builds, whose runtime
// keeps its own operator new to check every block.
#include <cstddef>
#include <new>

#include "squadron/core/thread_cache.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SQUADRON_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SQUADRON_SANITIZED 1
#endif

#if !defined(SQUADRON_SANITIZED)

namespace tc = squadron::core::thread_cache;

void* operator new(std::size_t size) { return tc::allocate(size); }
void* operator new[](std::size_t size) { return tc::allocate(size); }
void operator delete(void* p) noexcept { tc::release(p); }
void operator delete[](void* p) noexcept { tc::release(p); }
void operator delete(void* p, std::size_t size) noexcept { tc::release(p, size); }
void operator delete[](void* p, std::size_t size) noexcept { tc::release(p, size); }

#endif
