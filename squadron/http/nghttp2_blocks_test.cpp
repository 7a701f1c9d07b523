// nghttp2's memory from the thread's lists (core::thread_cache): a block given back is taken
// again by the next request of its size, realloc and calloc keep their contracts; and a real
// session (HPACK, streams, frames) runs on it.
#include "squadron/http/internal/nghttp2_blocks.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "squadron/core/thread_cache.hpp"
#include "squadron/http/internal/nghttp2_setup.hpp"

namespace squadron::http::internal {
namespace {

namespace tc = core::thread_cache;

// Each test starts and ends with this thread's lists empty.
class Nghttp2Blocks : public ::testing::Test {
 protected:
  void SetUp() override { tc::trim(); }
  void TearDown() override { tc::trim(); }
  nghttp2_mem* mem = nghttp2_blocks();
};

TEST_F(Nghttp2Blocks, ABlockGivenBackIsTakenAgainByTheNextOfItsSize) {
  void* a = mem->malloc(100, mem->mem_user_data);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 16, 0u) << "aligned as malloc's";
  std::memset(a, 'x', 100);
  mem->free(a, mem->mem_user_data);
  EXPECT_EQ(tc::kept_bytes(), 104u);
  EXPECT_EQ(mem->malloc(97, mem->mem_user_data), a) << "the same size class: the same block";
  EXPECT_EQ(tc::kept_bytes(), 0u);
  void* other = mem->malloc(300, mem->mem_user_data);
  EXPECT_NE(other, a);
  mem->free(a, mem->mem_user_data);
  mem->free(other, mem->mem_user_data);
  mem->free(nullptr, mem->mem_user_data);
  EXPECT_EQ(tc::kept_bytes(), 104u + 312u);
  tc::trim();
  EXPECT_EQ(tc::kept_bytes(), 0u);
}

TEST_F(Nghttp2Blocks, ReallocAndCallocKeepTheirContracts) {
  auto* p = static_cast<char*>(mem->malloc(50, mem->mem_user_data));
  for (int i = 0; i < 50; ++i) p[i] = static_cast<char>(i);
  p = static_cast<char*>(mem->realloc(p, 60, mem->mem_user_data));    // fits its block
  p = static_cast<char*>(mem->realloc(p, 5000, mem->mem_user_data));  // past the largest size
  for (int i = 0; i < 50; ++i) ASSERT_EQ(p[i], static_cast<char>(i));
  std::memset(p, 'y', 5000);
  p = static_cast<char*>(mem->realloc(p, 9000, mem->mem_user_data));
  EXPECT_EQ(p[4999], 'y');
  EXPECT_EQ(mem->realloc(p, 0, mem->mem_user_data), nullptr);  // freed
  auto* q = static_cast<char*>(mem->realloc(nullptr, 10, mem->mem_user_data));
  ASSERT_NE(q, nullptr);
  std::memset(q, 'z', 10);
  mem->free(q, mem->mem_user_data);
  auto* z = static_cast<unsigned char*>(mem->calloc(2, 8, mem->mem_user_data));
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(static_cast<void*>(z), static_cast<void*>(q)) << "taken again, and zeroed";
  for (int i = 0; i < 16; ++i) ASSERT_EQ(z[i], 0);
  mem->free(z, mem->mem_user_data);
  EXPECT_EQ(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data), nullptr) << "overflow refused";
}

// A client and a server session on them exchange a hundred requests and answers.
TEST_F(Nghttp2Blocks, SessionsRunOnThem) {
  nghttp2_session_callbacks* callbacks = nullptr;
  ASSERT_EQ(nghttp2_session_callbacks_new(&callbacks), 0);
  struct Seen {
    int requests = 0;
    int answers = 0;
  } seen;
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      callbacks, [](nghttp2_session* session, const nghttp2_frame* frame, void* user) {
        auto* s = static_cast<Seen*>(user);
        if (frame->hd.type != NGHTTP2_HEADERS) return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          ++s->requests;
          const nghttp2_nv answer[] = {field_nv(":status", "204"),
                                       field_nv("x-request-id", "0123456789abcdef")};
          nghttp2_submit_response(session, frame->hd.stream_id, answer, 2, nullptr);
        } else if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
          ++s->answers;
        }
        return 0;
      });
  nghttp2_session* client = nullptr;
  nghttp2_session* server = nullptr;
  ASSERT_EQ(nghttp2_session_client_new3(&client, callbacks, &seen, nullptr, mem), 0);
  ASSERT_EQ(nghttp2_session_server_new3(&server, callbacks, &seen, nullptr, mem), 0);
  nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, nullptr, 0);
  nghttp2_submit_settings(server, NGHTTP2_FLAG_NONE, nullptr, 0);
  const auto pump = [](nghttp2_session* from, nghttp2_session* to) {
    while (true) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(from, &data);
      if (n <= 0) return;
      ASSERT_EQ(nghttp2_session_mem_recv(to, data, static_cast<std::size_t>(n)), n);
    }
  };
  for (int i = 0; i < 100; ++i) {
    const std::string path = "/items/" + std::to_string(i);
    const nghttp2_nv request[] = {field_nv(":method", "GET"), field_nv(":scheme", "https"),
                                  field_nv(":authority", "shop.example"), field_nv(":path", path),
                                  field_nv("user-agent", "blocks-test")};
    ASSERT_GT(nghttp2_submit_request(client, nullptr, request, 5, nullptr, nullptr), 0);
    pump(client, server);
    pump(server, client);
  }
  EXPECT_EQ(seen.requests, 100);
  EXPECT_EQ(seen.answers, 100);
  EXPECT_GT(tc::kept_bytes(), 0u) << "the streams' blocks came back for the next ones";
  nghttp2_session_del(client);
  nghttp2_session_del(server);
  nghttp2_session_callbacks_del(callbacks);
}

}  // namespace
}  // namespace squadron::http::internal
