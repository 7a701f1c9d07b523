#include "squadron/http/connection_metrics.hpp"

#include <initializer_list>
#include <iterator>

#include <fmt/format.h>

namespace squadron::http {

namespace {

// One sample: name{labels,extra} value.
void sample(std::string& out, std::string_view name, std::string_view labels,
            std::string_view extra, std::size_t value) {
  const std::string_view comma = !labels.empty() && !extra.empty() ? "," : "";
  if (labels.empty() && extra.empty()) {
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
  } else {
    fmt::format_to(std::back_inserter(out), "{}{{{}{}{}}} {}\n", name, labels, comma, extra, value);
  }
}

}  // namespace

void append_connection_metrics(std::string& out, std::string_view labels,
                               const Server::Memory& server, const ConnectionPool::Memory& pool) {
  struct Sample {
    std::string_view extra;  // labels of this sample beyond `labels`
    std::size_t value;
  };
  // One gauge: its HELP and TYPE lines, then its samples.
  const auto gauge = [&](std::string_view name, std::string_view help,
                         std::initializer_list<Sample> samples) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const Sample& x : samples) sample(out, name, labels, x.extra, x.value);
  };
  gauge("squadron_http_connections", "Open client connections.", {{"", server.connections}});
  gauge("squadron_http_connection_memory_bytes",
        "Memory held for client connections: a record each, and request states (parser, "
        "request, read buffer) in use or pooled for reuse.",
        {{R"(held="records")", server.record_bytes},
         {R"(held="in_use")", server.in_use_bytes},
         {R"(held="pooled")", server.pooled_bytes}});
  gauge("squadron_http_upstream_idle_connections",
        "Pooled keep-alive connections to upstreams, waiting for a request.",
        {{"", pool.idle_connections}});
  gauge("squadron_http_upstream_waiting_requests",
        "Requests waiting for a connection to their upstream, all of whose connections allowed "
        "(proxy.max_connections) are in use.",
        {{"", pool.waiting_exchanges}});
  gauge("squadron_http_upstream_memory_bytes",
        "Memory held for upstream connections: the idle ones' records, and read buffers in use "
        "or pooled for reuse.",
        {{R"(held="idle")", pool.idle_bytes},
         {R"(held="in_use")", pool.buffer_bytes_in_use},
         {R"(held="pooled")", pool.buffer_bytes_pooled}});
}

}  // namespace squadron::http
