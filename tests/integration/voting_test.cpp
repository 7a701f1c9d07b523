// examples/voting as a new user runs it, from a copy of the folder: a Flask vote page, a Node
// result page, a Python worker with no port (ready: none), Redis and Postgres from Debian, each
// reaching the others through SQUADRON_<NAME>_HOST/_PORT on the gateway (protocol: tcp).
// Postgres runs as `user: postgres` after two tasks (its folder, initdb), is ready by an exec
// probe (pg_isready) and stops cleanly on its stop_signal (SIGINT). Needs what scripts/bootstrap
// installs and `npm ci` in examples/voting/result (scripts/test runs it).
#include <pwd.h>
#include <regex>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "fleet_fixture.hpp"

namespace squadron::testing {
namespace {

std::string file(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The uid a process runs as (its real uid, from /proc).
long uid_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

class Voting : public Fleet {
 protected:
  void SetUp() override {
    Fleet::SetUp();
    const fs::path example = fs::path(SQUADRON_SOURCE_DIR) / "examples" / "voting";
    const fs::path modules = example / "result" / "node_modules";
    ASSERT_TRUE(fs::exists(modules / "pg") && fs::exists(modules / "express"))
        << "the result page's modules are missing: run `npm ci` in examples/voting/result "
           "(scripts/test does)";
    for (const char* program : {"/usr/bin/redis-server", "/usr/lib/postgresql/15/bin/postgres"})
      ASSERT_TRUE(fs::exists(program)) << program << " is missing: run scripts/bootstrap";
    // A copy of the example as it is in the repository (no data, no state), with the modules.
    for (const char* part : {"squadron.yaml", "vote", "worker", "secrets", "result/server.js",
                             "result/package.json"}) {
      fs::create_directories((dir_ / part).parent_path());
      fs::copy(example / part, dir_ / part, fs::copy_options::recursive);
    }
    fs::create_directory_symlink(modules, dir_ / "result" / "node_modules");
    ::chmod(dir_.c_str(), 0755);  // postgres (another user) reaches its data folder below it
    // A gateway port of its own (the example's default is 8000).
    std::string text = file(dir_ / "squadron.yaml");
    text = std::regex_replace(text, std::regex(R"(\$\{VOTING_PORT:-8000\})"), "0");
    std::ofstream(dir_ / "squadron.yaml") << text;
  }
  std::uint16_t gateway_port() {
    const auto list = ps();
    const auto g = of(list, "gateway");
    return g.empty() ? 0 : port_of(*g[0]);
  }
};

TEST_F(Voting, AVoteGoesThroughRedisTheWorkerAndPostgresToTheResultPage) {
  const auto r = cli({"up", "-d", "--timeout", "90s"}, 120s);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto list = ps();
  for (const auto* o : list.empty() ? std::vector<const json::object*>{} : of(list, "vote"))
    EXPECT_EQ(o->at("state").as_string(), "ready");
  ASSERT_EQ(of(list, "worker").size(), 1u);
  EXPECT_EQ(of(list, "worker")[0]->at("state").as_string(), "ready") << "ready: none";
  ASSERT_EQ(of(list, "db").size(), 1u);
  const pid_t db = pid_of(*of(list, "db")[0]);
  const passwd* postgres = ::getpwnam("postgres");
  ASSERT_NE(postgres, nullptr);
  EXPECT_EQ(uid_of(db), static_cast<long>(postgres->pw_uid)) << "Postgres is not user: postgres";
  for (const char* task : {"db-folder", "db-init"}) {
    ASSERT_EQ(of(list, task).size(), 1u);
    EXPECT_EQ(of(list, task)[0]->at("last_exit").as_string(), "exit 0") << task;
  }

  // The vote page and the worker reach Redis, and the worker and the result page Postgres,
  // through the gateway's names for them: not the instances' own ports.
  const auto vote_env = environ_of(pid_of(*of(list, "vote")[0]));
  const auto redis_port = std::to_string(port_of(*of(list, "redis")[0]));
  EXPECT_EQ(env_value(vote_env, "REDIS_PORT"), env_value(vote_env, "SQUADRON_REDIS_PORT"));
  EXPECT_NE(env_value(vote_env, "REDIS_PORT"), redis_port);
  EXPECT_EQ(env_value(vote_env, "SQUADRON_REDIS_URL"),
            "tcp://127.0.0.1:" + env_value(vote_env, "REDIS_PORT"));

  const auto port = gateway_port();
  ASSERT_NE(port, 0);
  const auto page = fetch(port, "GET", "/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("Cats vs Dogs!"), std::string::npos) << page->body;
  for (const auto& [voter, vote] : {std::pair{"v1", "a"}, {"v2", "b"}, {"v3", "a"}}) {
    const std::string body = std::string("vote=") + vote;
    const auto cast = fetch(port, "POST", "/",
                            std::string("Cookie: voter_id=") + voter +
                                "\r\nContent-Type: application/x-www-form-urlencoded\r\n",
                            body);
    ASSERT_TRUE(cast);
    EXPECT_EQ(cast->status, 200);
    EXPECT_NE(cast->body.find("You voted for"), std::string::npos) << cast->body;
  }
  std::string last;
  EXPECT_TRUE(eventually(
      [&] {
        const auto res = fetch(port, "GET", "/result/api/results");
        last = res ? res->body : "no answer";
        return res && res->status == 200 && res->body == R"({"a":2,"b":1})";
      },
      20s))
      << "the results page says " << last;
  const auto result_page = fetch(port, "GET", "/result/");
  ASSERT_TRUE(result_page);
  EXPECT_NE(result_page->body.find("Cats vs Dogs"), std::string::npos);

  // Postgres stops on SIGINT, its clean ("fast") shutdown, not SIGKILLed after the grace.
  const auto down = cli({"down"}, 60s);
  ASSERT_EQ(down.code, 0) << down.output;
  const auto log = file(dir_ / ".squadron" / "logs" / "db-1.log");
  EXPECT_NE(log.find("received fast shutdown request"), std::string::npos) << log;
  EXPECT_NE(log.find("database system is shut down"), std::string::npos) << log;
  const auto events = file(dir_ / ".squadron" / "logs" / "squadron.log");
  // Its exit: 0 after the clean shutdown ("signal 9" had the grace run out).
  EXPECT_TRUE(
      std::regex_search(events, std::regex(R"(db-1: stopped \(pid \d+, port \d+\) after exit 0)")))
      << events;
}

}  // namespace
}  // namespace squadron::testing
