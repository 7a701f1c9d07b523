// Small blocks kept per thread for reuse: the operator new of a program that links
// squadron::new_cache (the squadron program does). A request through the gateway makes and frees
// some fifteen blocks (Asio's coroutine frames and operations, a stream's records). With ~1,600
// requests in flight, glibc's tcache (7 blocks a size) is empty or full at each turn, and malloc
// and free sort their bins: 11 % of the gateway's instructions (bench/h2_ir.sh). Here a freed
// block of up to kLargest bytes goes to its thread's list for its size, and the next allocation
// of that size takes it. A thread keeps kKeptBytes at most. trim_unused() (the server's sweeper
// calls it each tick) frees what no allocation took since its last call; the thread's end frees
// the rest. Blocks come from malloc and go back to free.
#pragma once

#include <cstddef>

namespace squadron::core::thread_cache {

// The largest block kept. Sizes are 24, 40, ..., 1,016: 16k + 8, what a malloc chunk of 16k + 16
// bytes holds, so that malloc_usable_size tells a block's size when delete is not told it.
inline constexpr std::size_t kLargest = 1016;
// Bytes a thread keeps at most: more than a burst of 1,600 requests through the gateway needs.
inline constexpr std::size_t kKeptBytes = 8 * 1024 * 1024;

// Never null: calls the new-handler, then throws std::bad_alloc, like operator new.
void* allocate(std::size_t size);
// `size` as given to allocate(). Without it, malloc_usable_size tells the block's size.
void release(void* p, std::size_t size) noexcept;
void release(void* p) noexcept;
// Frees the blocks no allocation took since the last call; returns how many bytes it freed.
std::size_t trim_unused() noexcept;
// Frees all this thread's kept blocks.
void trim() noexcept;
// Bytes this thread keeps now.
std::size_t kept_bytes() noexcept;

}  // namespace squadron::core::thread_cache
