// Prometheus text exposition helpers shared by the SDK's and the gateway's /metrics.
//
//   out += "requests_total{route=\"" + core::prometheus_label(route) + "\"} 3\n";
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace squadron::core {

// A label value as the text format wants it: backslash, double quote and newline escaped.
inline std::string prometheus_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace squadron::core
