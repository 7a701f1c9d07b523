// A fleet in a temporary folder per test, driven through the real `squadron` CLI and its
// control API over real sockets (control.listen on port 0). Shared by the fleet's tests.
#pragma once

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <signal.h>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "fixture.hpp"

namespace squadron::testing {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

struct CliResult {
  int code = -1;
  std::string output;
};

class Fleet : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("squadron-fleet-") + info->name() + "-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (fs::exists(dir_ / ".squadron" / "run.json")) {
      const auto pid = daemon_pid();
      cli({"down"}, 30s);
      if (pid > 0 && !process_gone(pid)) ::kill(pid, SIGKILL);  // ours; never left running
    }
    fs::remove_all(dir_);
  }

  // hello x2 (C++), echo x1, and whatever `extra` adds under services:.
  void write_manifest(const std::string& extra = "") {
    std::ofstream(dir_ / "squadron.yaml")
        << "name: trio\ncontrol: { listen: 127.0.0.1:0 }\nservices:\n"
        << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
        << "    replicas: 2\n    ready: { path: /readyz }\n"
        << "  echo:\n    command: " << bin_dir() << "/echo --threads 1\n"
        << extra;
  }

  CliResult cli(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
    std::vector<std::string> argv{bin_dir() + "/squadron"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--file");
    argv.push_back((dir_ / "squadron.yaml").string());
    ChildProcess p(argv);
    const auto code = p.wait_exit(timeout);
    return {code.value_or(-1), p.output()};
  }

  json::value run_json() const {
    std::ifstream in(dir_ / ".squadron" / "run.json");
    std::stringstream s;
    s << in.rdbuf();
    boost::system::error_code ec;
    auto v = json::parse(s.str(), ec);
    return ec ? json::value() : v;
  }
  pid_t daemon_pid() const {
    const auto v = run_json();
    return v.is_object() ? static_cast<pid_t>(v.at("pid").as_int64()) : -1;
  }
  std::uint16_t control_port() const {
    const std::string url(run_json().at("control").as_string());
    return static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  }
  std::string token() const {
    std::ifstream in(dir_ / ".squadron" / "token");
    std::string t;
    in >> t;
    return t;
  }
  std::string auth() const { return "Authorization: Bearer " + token() + "\r\n"; }

  json::array ps() {
    const auto r = cli({"ps", "--json"});
    EXPECT_EQ(r.code, 0) << r.output;
    boost::system::error_code ec;
    auto v = json::parse(r.output, ec);
    EXPECT_FALSE(ec) << r.output;
    return ec || !v.is_array() ? json::array() : v.as_array();
  }
  static std::vector<const json::object*> of(const json::array& list, std::string_view service) {
    std::vector<const json::object*> out;
    for (const auto& v : list) {
      if (v.as_object().at("service").as_string() == service) out.push_back(&v.as_object());
    }
    return out;
  }
  static std::uint16_t port_of(const json::object& o) {
    return static_cast<std::uint16_t>(o.at("port").as_int64());
  }
  static pid_t pid_of(const json::object& o) { return static_cast<pid_t>(o.at("pid").as_int64()); }

  // SIGKILLs a ready instance of `service` `times` times, `every` apart (while a Load runs:
  // pacing, not synchronisation); returns how many it found to kill.
  int kill_ready(std::string_view service, int times, std::chrono::milliseconds every) {
    int killed = 0;
    for (int k = 0; k < times; ++k) {
      std::this_thread::sleep_for(every);
      const auto list = ps();
      for (const auto* o : of(list, service)) {
        if (o->at("state").as_string() != "ready") continue;
        ::kill(pid_of(*o), SIGKILL);
        ++killed;
        break;
      }
    }
    std::this_thread::sleep_for(every);
    return killed;
  }

  // Polls `ps --json` until `pred` holds for the instance list (or `timeout` passes).
  template <typename Pred>
  bool eventually_ps(Pred pred, std::chrono::milliseconds timeout = 20s) {
    return eventually([&] { return pred(ps()); }, timeout, 100ms);
  }

  void up() {
    const auto r = cli({"up", "-d"}, 60s);
    ASSERT_EQ(r.code, 0) << r.output;
  }

  fs::path dir_;
};

// The environment of the process `pid` (from /proc), as NAME=VALUE lines.
// Requests sent from `threads` threads until stop() (or the end of the scope), each answer
// counted: the load a rollout, a scale-down or a kill runs under. `raw`: the whole request,
// sent over one keep-alive connection per thread (a new one after a failure); else `target` is
// fetched on a new connection each time.
class Load {
 public:
  struct Options {
    int threads = 1;
    std::string method = "GET";
    std::string target = "/";
    std::string raw;  // not empty: this request, on kept-alive connections
  };
  Load(std::uint16_t port, Options o) : port_(port), o_(std::move(o)) {
    for (int i = 0; i < o_.threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~Load() { stop(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }
  int answered() const { return ok_.load() + failed_.load(); }
  // The first failure, for the assertion's message (read after stop()).
  const std::string& first_failure() const { return first_failure_; }

 private:
  void count(const std::optional<RawResponse>& r) {
    if (r && r->status == 200) {
      ++ok_;
      return;
    }
    if (failed_++ == 0) {
      first_failure_ = r ? std::to_string(r->status) + " " + r->body : "no answer";
    }
  }
  void run() {
    if (o_.raw.empty()) {
      while (!stop_) count(fetch(port_, o_.method, o_.target));
      return;
    }
    auto c = std::make_unique<RawConnection>(port_);
    while (!stop_) {
      std::optional<RawResponse> r;
      if (c->send(o_.raw)) r = c->read_response();
      const bool good = r && r->status == 200;
      count(r);
      if (!good) c = std::make_unique<RawConnection>(port_);
    }
  }
  std::uint16_t port_;
  Options o_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::string first_failure_;
  std::vector<std::thread> threads_;
};

inline std::string environ_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(all.begin(), all.end(), '\0', '\n');
  return all;
}

// The value of `name` in an environment as environ_of() gives it ("" when absent).
inline std::string env_value(const std::string& env, const std::string& name) {
  const auto at = env.find(name + "=");
  if (at == std::string::npos || (at != 0 && env[at - 1] != '\n')) return "";
  const auto start = at + name.size() + 1;
  return env.substr(start, env.find('\n', start) - start);
}

// Requests answered 200 on /hello by the hello instance on `port`, from its own /metrics.
inline long hello_count(std::uint16_t port) {
  const auto r = fetch(port, "GET", "/metrics");
  if (!r) return -1;
  const std::string key = "route=\"/hello\",status=\"200\"} ";
  const auto at = r->body.find(key);
  return at == std::string::npos ? 0 : std::stol(r->body.substr(at + key.size()));
}

class Gateway : public Fleet {
 protected:
  void start_routed() {
    std::ofstream(dir_ / "squadron.yaml")
        << "name: routed\ncontrol: { listen: 127.0.0.1:0 }\ngateway: { listen: 127.0.0.1:0 }\n"
        << "services:\n"
        << "  hello:\n    command: [" << bin_dir() << "/hello, --threads, \"1\"]\n"
        << "    replicas: 3\n    ready: { path: /readyz }\n    routes: [/hello]\n"
        << "  flask:\n    command: [/usr/bin/python3, " << SQUADRON_SOURCE_DIR
        << "/examples/flask-hello/app.py]\n"
        << "    routes: [{ prefix: /py, strip_prefix: true }]\n";
    up();
    const auto list = ps();
    ASSERT_EQ(of(list, "gateway").size(), 1u) << "routes start the gateway";
    gateway_ = port_of(*of(list, "gateway")[0]);
    for (const auto* o : of(list, "hello")) hellos_.push_back(port_of(*o));
  }
  std::uint16_t gateway_ = 0;
  std::vector<std::uint16_t> hellos_;
};

inline std::string flaky_py() {
  return std::string(SQUADRON_SOURCE_DIR) + "/tests/integration/services/flaky.py";
}

inline long count_of(std::uint16_t port) {
  const auto r = fetch(port, "GET", "/count");
  return r && r->status == 200 ? std::stol(r->body) : -1;
}

// The peak resident memory of process `pid` in KiB (VmHWM), or -1.
inline long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace squadron::testing
