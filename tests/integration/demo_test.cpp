// The demo application (examples/streamflix) on its own manifest: the page, fault isolation,
// persistence.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <signal.h>
#include <sstream>
#include <thread>

#include <boost/crc.hpp>
#include <boost/json.hpp>

#include "fleet_fixture.hpp"

namespace squadron::testing {
namespace {

TEST_F(Gateway, TheStreamflixDemoRendersItsPageAndSurvivesRatingsGoingAway) {
  // The demo's own manifest, on free ports, with its database in this test's folder.
  const std::string example = std::string(SQUADRON_SOURCE_DIR) + "/examples/streamflix";
  std::ifstream in(example + "/squadron.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
  };
  replace_all("127.0.0.1:9900", "127.0.0.1:0");
  // Plain HTTP for this test's raw client (the demo's HTTPS and HTTP/2 are scripts/demo's and the
  // browser test's to check).
  const std::string tls_line = "  tls: { self_signed: true, redirect: 127.0.0.1:8080 }\n";
  ASSERT_NE(text.find(tls_line), std::string::npos) << "the demo's gateway.tls changed";
  replace_all(tls_line, "");
  replace_all("127.0.0.1:8443", "127.0.0.1:0");
  replace_all("../../build/bin", bin_dir());
  replace_all(".data/ratings.db", (dir_ / "ratings.db").string());
  replace_all("recommendations/app.py", example + "/recommendations/app.py");
  replace_all("../flask/app.py", example + "/../flask/app.py");
  replace_all("data/titles.json", example + "/data/titles.json");
  replace_all("data/ratings-seed.json", example + "/data/ratings-seed.json");
  std::ofstream(dir_ / "squadron.yaml") << text;
  up();
  const auto list = ps();
  for (const char* s : {"web", "catalog", "ratings", "recommendations", "hello"})
    EXPECT_EQ(of(list, s).size(), 1u) << s;
  const auto gateway = port_of(*of(list, "gateway")[0]);

  auto page = fetch(gateway, "GET", "/");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200) << page->body;
  EXPECT_NE(page->body.find("Orbit of Nine"), std::string::npos) << "the catalogue";
  EXPECT_NE(page->body.find("&#9733;"), std::string::npos) << "average ratings";
  EXPECT_NE(page->body.find("Because you watched"), std::string::npos) << "recommendations";
  auto count_of_t02 = [&] {
    const auto r = fetch(gateway, "GET", "/ratings/t02");
    return r && r->status == 200 ? json::parse(r->body).at("count").to_number<int>() : -1;
  };
  const int before_rating = count_of_t02();
  ASSERT_GT(before_rating, 0) << "seeded on first start";
  const auto rated = fetch(gateway, "POST", "/ratings", "Content-Type: application/json\r\n",
                           R"({"title_id": "t02", "user": "tester", "stars": 5})");
  ASSERT_TRUE(rated);
  EXPECT_EQ(rated->status, 201) << rated->body;
  const auto bad = fetch(gateway, "POST", "/ratings", "Content-Type: application/json\r\n",
                         R"({"title_id": "t02", "user": "tester", "stars": 9})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 422);
  const auto hello = fetch(gateway, "GET", "/hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->body, "Hello World!");

  // ratings gone: the page still renders within the route timeout, ratings marked unavailable.
  ASSERT_EQ(cli({"scale", "ratings=0"}).code, 0);
  const auto before = std::chrono::steady_clock::now();
  page = fetch(gateway, "GET", "/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 15s) << "the route timeout";
  EXPECT_NE(page->body.find("ratings unavailable"), std::string::npos);
  EXPECT_NE(page->body.find("Orbit of Nine"), std::string::npos);

  // Back: nothing it stored was lost.
  ASSERT_EQ(cli({"scale", "ratings=1"}).code, 0);
  EXPECT_EQ(count_of_t02(), before_rating + 1);
  EXPECT_TRUE(fs::exists(dir_ / "ratings.db"));
}

}  // namespace
}  // namespace squadron::testing
