// Fuzzes what Squadron reads from etcd: any bytes as each kind of answer and as a watch line must
// end in a value or an error, never a crash; base64 decoding round-trips whatever it accepts.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "squadron/cluster/etcd_codec.hpp"

namespace c = squadron::cluster;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)c::parse_header_answer(text);
  (void)c::parse_range_answer(text);
  (void)c::parse_delete_answer(text);
  (void)c::parse_txn_answer(text);
  (void)c::parse_lease_answer(text);
  if (auto w = c::parse_watch_line(text); !w.has_error()) {
    for (const auto& e : w->events) {
      if (e.kv.key.size() > size) __builtin_trap();  // decoding never grows
    }
  }
  if (auto bytes = c::base64_decode(text)) {
    if (c::base64_encode(*bytes) != text) __builtin_trap();
  }
  (void)c::prefix_end(text);
  return 0;
}
