// nghttp2's memory (its nghttp2_mem) from the thread's lists of small blocks, core::thread_cache.
// Every request makes and frees again a stream record, the header blocks HPACK decodes into, a
// queued frame and the copy of the answer's fields: five allocations a request through the
// gateway, which glibc's malloc serves slowly with ~1,600 requests in flight (malloc and free were
// 16 % of the gateway's instructions, bench/h2_ir.sh). nghttp2 allocates with malloc, not operator
// new, so the program's operator new (squadron::new_cache) does not reach them: this does, for
// the server's sessions and the upstream client's alike. What no stream took during a sweeper
// tick is freed by the server's sweeper (trim_unused), as for every block the lists keep.
// Not part of squadron/http's API.
#pragma once

#include <nghttp2/nghttp2.h>

namespace squadron::http::internal {

// For nghttp2_session_*_new3 (which copies it); the same for every session and thread.
nghttp2_mem* nghttp2_blocks() noexcept;

}  // namespace squadron::http::internal
