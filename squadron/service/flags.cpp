// Service::run(argc, argv): flags and environment into a ServiceConfig. Kept apart from
// service.cpp because CLI11 is header-only and heavy to compile.
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "squadron/core/duration.hpp"
#include "squadron/service/service.hpp"

namespace squadron::service {

namespace {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return false;
  const std::string_view s(v);
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

}  // namespace

int Service::run(int argc, char** argv) {
  ServiceConfig config;
  CLI::App cli{fmt::format("{} — a Squadron service", name_)};
  int port = 8080;
  std::size_t threads = 0;
  std::string drain = "0s", grace = "10s", header_timeout = "10s", idle_timeout = "60s";
  bool access_log = env_flag("SQUADRON_ACCESS_LOG");
  std::size_t max_body = config.server.limits.max_body;
  cli.add_option("--port", port, "TCP port to listen on (0 picks a free one)")
      ->envname("PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cli.add_option("--host", config.server.host, "address to listen on")
      ->envname("HOST")
      ->capture_default_str();
  cli.add_option("--threads", threads, "I/O threads (0 = one per core)")
      ->envname("SQUADRON_THREADS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cli.add_option("--drain-delay", drain,
                 "after SIGTERM, keep accepting this long with /readyz at 503")
      ->envname("SQUADRON_DRAIN_DELAY")
      ->capture_default_str();
  cli.add_option("--grace", grace, "how long requests in flight may take after the drain")
      ->envname("SQUADRON_STOP_GRACE")
      ->capture_default_str();
  cli.add_option("--header-timeout", header_timeout, "a request head must arrive within this (408)")
      ->capture_default_str();
  cli.add_option("--idle-timeout", idle_timeout, "close keep-alive connections idle this long")
      ->capture_default_str();
  cli.add_option("--max-body", max_body, "largest request body in bytes (413 beyond)")
      ->capture_default_str();
  cli.add_flag("--access-log", access_log,
               "print one JSON line per request (SQUADRON_ACCESS_LOG=1)");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 2;
  }
  struct {
    const char* flag;
    const std::string& text;
    std::chrono::milliseconds& out;
  } durations[] = {{"--drain-delay", drain, config.drain_delay},
                   {"--grace", grace, config.stop_grace},
                   {"--header-timeout", header_timeout, config.server.header_timeout},
                   {"--idle-timeout", idle_timeout, config.server.idle_timeout}};
  for (auto& d : durations) {
    auto v = core::parse_duration(d.text);
    if (!v) {
      std::fprintf(stderr, "%s: %s must be a duration such as 500ms, 10s or 1m (got \"%s\")\n",
                   name_.c_str(), d.flag, d.text.c_str());
      return 2;
    }
    d.out = *v;
  }
  config.server.port = static_cast<std::uint16_t>(port);
  config.server.threads = threads;
  config.server.limits.max_body = max_body;
  config.access_log = access_log;
  return run(std::move(config));
}

}  // namespace squadron::service
