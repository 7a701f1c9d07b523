// `squadron up` in the foreground: every instance of the manifest as its own process, output
// streamed with a coloured service prefix (like docker compose), progress until all are ready,
// then a table of where each answers. SIGINT/SIGTERM stops everything gracefully.
#include "up.hpp"

#include <csignal>
#include <cstdio>
#include <map>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include "squadron/supervisor/guardian.hpp"
#include "squadron/supervisor/supervisor.hpp"

namespace squadron::apps {

namespace sv = squadron::supervisor;

namespace {

sv::InstanceSpec to_instance_spec(const control::ServiceSpec& s) {
  sv::InstanceSpec spec;
  spec.service = s.name;
  spec.launch.argv = s.command;
  spec.launch.cwd = s.cwd;
  spec.launch.env = s.env;
  spec.port = s.port;
  spec.ready = {s.ready.path, s.ready.interval, s.ready.timeout, s.ready.threshold};
  if (s.live)
    spec.live = sv::ProbeSpec{s.live->path, s.live->interval, s.live->timeout, s.live->threshold};
  spec.stop_grace = s.stop_grace;
  spec.restart = s.restart == control::RestartPolicy::kAlways      ? sv::Restart::kAlways
                 : s.restart == control::RestartPolicy::kOnFailure ? sv::Restart::kOnFailure
                                                                   : sv::Restart::kNever;
  return spec;
}

}  // namespace

int up(const control::Manifest& m) {
  // First, while few descriptors are open: the guardian kills every instance's process group if
  // squadron dies, even by SIGKILL.
  sv::Guardian guardian;
  boost::asio::io_context io;
  sv::PosixLauncher launcher;
  core::SystemClock clock;
  sv::Supervisor sup(io, launcher, clock);
  sup.set_guardian(&guardian);
  sup.log_to(m.dir() / ".squadron" / "logs");  // <instance>.log, rotated at 1 MiB

  const bool colour = ::isatty(STDOUT_FILENO) != 0;
  static constexpr int kColours[] = {36, 33, 32, 35, 34, 31};
  std::map<std::string, int> colour_of;
  std::size_t width = 0;
  int total = 0;
  for (const auto& s : m.services) {
    colour_of[s.name] = kColours[colour_of.size() % std::size(kColours)];
    width = std::max(width, s.name.size() + 2);
    total += s.replicas;
  }
  sup.on_output = [&](const sv::InstanceStatus& st, std::string_view line) {
    const std::string prefix = fmt::format("{:<{}}|", st.id, width + 2);
    if (colour) {
      std::fputs(fmt::format("\x1b[{}m{}\x1b[0m {}\n", colour_of[st.service], prefix, line).c_str(),
                 stdout);
    } else {
      std::fputs(fmt::format("{} {}\n", prefix, line).c_str(), stdout);
    }
    std::fflush(stdout);
  };
  bool announced = false;
  std::map<std::string, sv::InstanceState> last;
  sup.on_change = [&](const sv::InstanceStatus& st) {
    if (last[st.id] != st.state || st.state == sv::InstanceState::kStarting) {
      std::fprintf(stderr, "squadron: %s %s (pid %d, port %u)%s\n", st.id.c_str(),
                   std::string(sv::to_string(st.state)).c_str(), st.pid, st.port,
                   st.last_exit.empty() ? "" : (" after " + st.last_exit).c_str());
    }
    last[st.id] = st.state;
    int ready = 0;
    for (const auto& s : sup.snapshot()) ready += s.state == sv::InstanceState::kReady;
    if (!announced && ready == total) {
      announced = true;
      std::fprintf(stderr, "squadron: %d/%d ready\n", ready, total);
      std::fprintf(stderr, "%-16s %-14s %s\n", "SERVICE", "INSTANCE", "URL");
      for (const auto& s : sup.snapshot()) {
        std::fprintf(stderr, "%-16s %-14s http://127.0.0.1:%u\n", s.service.c_str(), s.id.c_str(),
                     s.port);
      }
      std::fprintf(stderr, "squadron: fleet \"%s\" is up; Ctrl-C stops it\n", m.name.c_str());
    }
  };

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  bool stopping = false;
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    stopping = true;
    std::fprintf(stderr, "squadron: stopping %zu instances\n", sup.snapshot().size());
    boost::system::error_code ignored;
    signals.clear(ignored);  // a second Ctrl-C ends squadron at once (its children die with it)
    sup.stop_all([&] { io.stop(); });
  });
  for (const auto& s : m.services) {
    for (int i = 0; i < s.replicas; ++i) sup.add(to_instance_spec(s));
  }
  if (total == 0) std::fprintf(stderr, "squadron: no replicas to start\n");
  std::fprintf(stderr, "squadron: starting %d instance%s of %zu service%s\n", total,
               total == 1 ? "" : "s", m.services.size(), m.services.size() == 1 ? "" : "s");
  io.run();
  std::fprintf(stderr, "squadron: %s\n", stopping ? "stopped" : "done");
  return 0;
}

}  // namespace squadron::apps
