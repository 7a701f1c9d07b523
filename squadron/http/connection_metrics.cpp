#include "squadron/http/connection_metrics.hpp"

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
  out += "# HELP squadron_http_connections Open client connections.\n";
  out += "# TYPE squadron_http_connections gauge\n";
  sample(out, "squadron_http_connections", labels, "", server.connections);
  out +=
      "# HELP squadron_http_connection_memory_bytes Memory held for client connections: a record "
      "each, and request states (parser, request, read buffer) in use or pooled for reuse.\n";
  out += "# TYPE squadron_http_connection_memory_bytes gauge\n";
  sample(out, "squadron_http_connection_memory_bytes", labels, R"(held="records")",
         server.record_bytes);
  sample(out, "squadron_http_connection_memory_bytes", labels, R"(held="in_use")",
         server.in_use_bytes);
  sample(out, "squadron_http_connection_memory_bytes", labels, R"(held="pooled")",
         server.pooled_bytes);
  out +=
      "# HELP squadron_http_upstream_idle_connections Pooled keep-alive connections to "
      "upstreams, waiting for a request.\n";
  out += "# TYPE squadron_http_upstream_idle_connections gauge\n";
  sample(out, "squadron_http_upstream_idle_connections", labels, "", pool.idle_connections);
  out +=
      "# HELP squadron_http_upstream_memory_bytes Memory held for upstream connections: the "
      "idle ones' records, and read buffers in use or pooled for reuse.\n";
  out += "# TYPE squadron_http_upstream_memory_bytes gauge\n";
  sample(out, "squadron_http_upstream_memory_bytes", labels, R"(held="idle")", pool.idle_bytes);
  sample(out, "squadron_http_upstream_memory_bytes", labels, R"(held="in_use")",
         pool.buffer_bytes_in_use);
  sample(out, "squadron_http_upstream_memory_bytes", labels, R"(held="pooled")",
         pool.buffer_bytes_pooled);
}

}  // namespace squadron::http
