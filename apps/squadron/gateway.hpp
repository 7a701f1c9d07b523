// `squadron gateway`: the fleet's front door, a process of its own that `squadron up` starts and
// supervises like any instance. It follows the control plane's watch for routes and ready
// instances and proxies every request (squadron/gateway). With -c FILE it runs standalone, in
// front of any HTTP services the file names by address or DNS name (control/gateway_file.hpp),
// and reloads the file on SIGHUP or when it changes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace squadron::apps {

struct GatewayOptions {
  std::string control;                // the control API's URL, "http://127.0.0.1:9900"
  std::string config;                 // -c FILE: standalone, from this file (no control plane)
  std::string host = "127.0.0.1";     // HOST
  int port = -1;                      // -1: $PORT, else 8080
  std::size_t threads = 0;            // 0: one per core
  std::vector<std::string> internal;  // "SERVICE=PORT": a listener per service (SQUADRON_*_URL)
  int admin = -1;                     // loopback port of /metrics; -1: none, 0: a free one
  // The listeners come ready-made as descriptors 3, 4, ...: the front door, each --internal in
  // order, then --admin (`squadron up` holds them for the fleet's life, so a restarted gateway
  // never binds again and nobody can take its ports meanwhile).
  bool listen_fds = false;
  std::vector<std::string> trusted_proxies;  // believed X-Forwarded-For senders (CIDR blocks)
  // Loopback listeners for services added later (the watch names the service of each), taken
  // after the --internal ones with --listen-fds.
  std::vector<int> spares;
  // Ports among the --internal and --spare ones that pass TCP through (protocol: tcp) instead
  // of serving HTTP.
  std::vector<int> tcp;
  // HTTPS on the front door: certificates and their keys, in pairs (the first is the default;
  // the others are chosen by SNI). Reloaded on SIGHUP and when a file changes.
  std::vector<std::string> tls_cert;
  std::vector<std::string> tls_key;
  std::string redirect;  // HOST:PORT of a plain listener answering 308 to https://
  bool hsts = false;
  int idle_timeout = 0;  // seconds a keep-alive connection may wait for a request; 0: 60
};

int run_gateway(const GatewayOptions& options);
// -c FILE: the listeners, threads and upstreams from the file (--threads overrides its threads).
int run_gateway_file(const GatewayOptions& options);

}  // namespace squadron::apps
