// The standalone gateway's file, `squadron gateway -c gateway.yaml` (docs/gateway.md): the
// gateway in front of any HTTP services named by address or DNS name, with the routes and
// `proxy:` policies of a squadron.yaml. Read and checked as a manifest is (every problem with
// file:line:column, the key path and a hint; ${VAR} from the environment).
//
//   listen: 0.0.0.0:8080
//   admin: 127.0.0.1:9901              # /metrics, /upstreams (optional)
//   resolve_every: 5s                  # DNS names are resolved again this often
//   upstreams:
//     catalog:
//       endpoints: [catalog-pods.shop.svc.cluster.local:8080, 10.0.0.7:8080]
//       routes: [/titles, { prefix: /api, strip_prefix: true }]
//       proxy: { retries: 2, timeout: 5s }
//
// Thread safety: plain values.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "squadron/control/manifest.hpp"
#include "squadron/registry/watch.hpp"

namespace squadron::control {

struct GatewayFile {
  std::string listen = "0.0.0.0:8080";
  std::string admin;  // host:port of /metrics and /upstreams; empty: none
  int threads = 0;    // I/O threads; 0: one per core
  std::vector<std::string> trusted_proxies;
  std::optional<TlsSpec> tls;  // tls: { cert, key } as in a manifest's gateway
  std::chrono::milliseconds resolve_every = std::chrono::seconds(5);
  std::vector<registry::UpstreamSpec> upstreams;  // in file order
  std::filesystem::path file;                     // absolute
};

struct GatewayFileResult {
  std::optional<GatewayFile> config;  // set only when there are no errors
  std::vector<ManifestError> errors;
  bool ok() const { return config.has_value(); }
};

GatewayFileResult parse_gateway_file(std::string_view text, const std::filesystem::path& file);
GatewayFileResult load_gateway_file(const std::filesystem::path& file);

}  // namespace squadron::control
