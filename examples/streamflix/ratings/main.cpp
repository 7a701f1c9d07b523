// streamflix's ratings, kept in SQLite (RATINGS_DB, default .data/ratings.db beside the
// manifest): each service owns its data, and a restart or a crash loses none of it (WAL,
// synchronous=FULL: a rating answered 201 is on disk).
//   POST /ratings {"title_id": "t01", "user": "ana", "stars": 4}   -> 201 (a user's new stars
//                                                                     for a title replace theirs)
//   GET  /ratings/averages       {"t01": {"average": 4.2, "count": 5}, ...}
//   GET  /ratings/{title_id}     {"title_id", "average", "count"}
// On first start (an empty table) it loads data/ratings-seed.json (RATINGS_SEED), so the demo
// has ratings to show.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sqlite3.h>
#include <sstream>
#include <string>

#include <boost/json.hpp>

#include "squadron/service/service.hpp"

namespace json = boost::json;

namespace {

// One connection, used under a mutex: SQLite serialises writers anyway, and every statement
// here takes microseconds.
class Store {
 public:
  bool open(const std::string& path, std::string& error) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      error = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      return false;
    }
    sqlite3_busy_timeout(db_, 5000);
    return exec("PRAGMA journal_mode=WAL", error) && exec("PRAGMA synchronous=FULL", error) &&
           exec(
               "CREATE TABLE IF NOT EXISTS ratings ("
               " title_id TEXT NOT NULL, user TEXT NOT NULL,"
               " stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),"
               " at_ms INTEGER NOT NULL, PRIMARY KEY (title_id, user))",
               error);
  }
  ~Store() {
    if (db_ != nullptr) sqlite3_close(db_);
  }

  bool empty() {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_, "SELECT 1 FROM ratings LIMIT 1", -1, &s, nullptr);
    const bool none = sqlite3_step(s) != SQLITE_ROW;
    sqlite3_finalize(s);
    return none;
  }

  bool put(const std::string& title, const std::string& user, int stars, std::string& error) {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "INSERT INTO ratings (title_id, user, stars, at_ms) VALUES (?, ?, ?, ?)"
                           " ON CONFLICT (title_id, user) DO UPDATE SET stars = excluded.stars,"
                           " at_ms = excluded.at_ms",
                           -1, &s, nullptr) != SQLITE_OK) {
      error = sqlite3_errmsg(db_);
      return false;
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    sqlite3_bind_text(s, 1, title.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, user.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 3, stars);
    sqlite3_bind_int64(s, 4, now);
    const bool ok = sqlite3_step(s) == SQLITE_DONE;
    if (!ok) error = sqlite3_errmsg(db_);
    sqlite3_finalize(s);
    return ok;
  }

  // {title_id: {"average", "count"}}, of one title when `title` is not empty.
  json::object averages(const std::string& title = {}) {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_,
                       title.empty() ? "SELECT title_id, AVG(stars), COUNT(*) FROM ratings GROUP "
                                       "BY title_id"
                                     : "SELECT title_id, AVG(stars), COUNT(*) FROM ratings WHERE "
                                       "title_id = ? GROUP BY title_id",
                       -1, &s, nullptr);
    if (!title.empty()) sqlite3_bind_text(s, 1, title.c_str(), -1, SQLITE_TRANSIENT);
    json::object out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      const auto* id = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
      out[id] = json::object{{"average", std::round(sqlite3_column_double(s, 1) * 100) / 100},
                             {"count", sqlite3_column_int64(s, 2)}};
    }
    sqlite3_finalize(s);
    return out;
  }

 private:
  bool exec(const char* sql, std::string& error) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK) return true;
    error = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return false;
  }

  sqlite3* db_ = nullptr;
  std::mutex mutex_;
};

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

void seed(Store& store, const std::string& path) {
  std::ifstream in(path);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const auto doc = json::parse(text.str(), ec);
  if (ec || !doc.is_array()) return;
  int n = 0;
  for (const auto& r : doc.as_array()) {
    const auto* o = r.if_object();
    if (o == nullptr || !o->contains("title_id") || !o->contains("user") || !o->contains("stars"))
      continue;
    std::string error;
    if (store.put(std::string(o->at("title_id").as_string()),
                  std::string(o->at("user").as_string()),
                  static_cast<int>(o->at("stars").to_number<std::int64_t>()), error))
      ++n;
  }
  std::printf("ratings: %d seed ratings from %s\n", n, path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const char* db_env = std::getenv("RATINGS_DB");
  const std::string db_path = db_env != nullptr ? db_env : ".data/ratings.db";
  std::error_code fec;
  if (const auto dir = std::filesystem::path(db_path).parent_path(); !dir.empty())
    std::filesystem::create_directories(dir, fec);
  auto store = std::make_shared<Store>();
  std::string error;
  if (!store->open(db_path, error)) {
    std::fprintf(stderr, "ratings: cannot open %s: %s\n", db_path.c_str(), error.c_str());
    return 1;
  }
  if (store->empty()) {
    const char* seed_env = std::getenv("RATINGS_SEED");
    seed(*store, seed_env != nullptr ? seed_env : "data/ratings-seed.json");
  }

  squadron::Service app{"ratings"};
  app.post("/ratings", [store](const squadron::Request& req) -> squadron::Response {
    const auto doc = req.json();
    const auto* o = doc ? doc->if_object() : nullptr;
    const auto* title = o != nullptr ? o->if_contains("title_id") : nullptr;
    const auto* user = o != nullptr ? o->if_contains("user") : nullptr;
    const auto* stars = o != nullptr ? o->if_contains("stars") : nullptr;
    if (title == nullptr || !title->is_string() || !valid_id(title->as_string()) ||
        user == nullptr || !user->is_string() || !valid_id(user->as_string()))
      return squadron::Response::problem(
          422,
          "the body needs \"title_id\" and \"user\" (letters, digits, - and _) and "
          "\"stars\" from 1 to 5, like {\"title_id\": \"t01\", \"user\": \"ana\", "
          "\"stars\": 4}");
    if (stars == nullptr || !stars->is_int64() || stars->as_int64() < 1 || stars->as_int64() > 5)
      return squadron::Response::problem(422, "\"stars\" must be a whole number from 1 to 5");
    std::string why;
    if (!store->put(std::string(title->as_string()), std::string(user->as_string()),
                    static_cast<int>(stars->as_int64()), why))
      return squadron::Response::problem(503, "the ratings store failed: " + why);
    return squadron::Response::json(*o, 201);
  });
  app.get("/ratings/averages",
          [store](const squadron::Request&) { return json::value(store->averages()); });
  app.get("/ratings/{title_id}", [store](const squadron::Request& req) {
    const std::string id(req.param("title_id"));
    auto all = store->averages(id);
    const auto* one = all.if_contains(id);
    return json::value{{"title_id", id},
                       {"average", one != nullptr ? one->at("average") : json::value(nullptr)},
                       {"count", one != nullptr ? one->at("count") : json::value(0)}};
  });
  return app.run(argc, argv);
}
