// Prometheus lines for what a process's connections hold: its server's (clients' connections)
// and its connection pools' (upstream connections), so that the cost of idle connections shows.
//
//   std::string out = ...;
//   append_connection_metrics(out, R"(service="hello")", server.memory(),
//   ConnectionPool::memory());
#pragma once

#include <string>
#include <string_view>

#include "squadron/http/client.hpp"
#include "squadron/http/server.hpp"

namespace squadron::http {

// `labels`: the label set every line carries ("" for none), e.g. `service="hello"`.
void append_connection_metrics(std::string& out, std::string_view labels,
                               const Server::Memory& server, const ConnectionPool::Memory& pool);

}  // namespace squadron::http
