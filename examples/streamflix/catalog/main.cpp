// streamflix's catalogue: the titles of data/titles.json (CATALOG_DATA), read once at start.
//   GET /titles[?genre=drama]   every title, or a genre's
//   GET /titles/{id}            one title, or 404
//   GET /genres                 the genres and how many titles each has
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <boost/json.hpp>

#include "squadron/service/service.hpp"

namespace json = boost::json;

int main(int argc, char** argv) {
  const char* env = std::getenv("CATALOG_DATA");
  const std::string path = env != nullptr ? env : "data/titles.json";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const json::value doc = json::parse(text.str(), ec);
  if (!in || ec || !doc.is_array()) {
    std::fprintf(stderr, "catalog: cannot read the titles from %s (set CATALOG_DATA): %s\n",
                 path.c_str(), ec ? ec.message().c_str() : "not a JSON array");
    return 1;
  }
  // Immutable after start: handlers on every I/O thread read it without locks.
  const json::array titles = doc.as_array();
  std::map<std::string, const json::object*, std::less<>> by_id;
  for (const auto& t : titles) {
    const auto* o = t.if_object();
    const auto* id = o != nullptr ? o->if_contains("id") : nullptr;
    const auto* genres = o != nullptr ? o->if_contains("genres") : nullptr;
    if (id == nullptr || !id->is_string() || genres == nullptr || !genres->is_array()) {
      std::fprintf(stderr, "catalog: %s: every title needs an \"id\" and \"genres\": %s\n",
                   path.c_str(), json::serialize(t).c_str());
      return 1;
    }
    by_id[std::string(id->as_string())] = o;
  }

  squadron::Service app{"catalog"};
  app.get("/titles", [&](const squadron::Request& req) -> squadron::Response {
    const auto genre = req.query_param("genre");
    if (!genre) return squadron::Response::json(titles);
    json::array out;
    for (const auto& t : titles) {
      for (const auto& g : t.at("genres").as_array()) {
        if (g.is_string() && g.as_string() == *genre) {
          out.push_back(t);
          break;
        }
      }
    }
    return squadron::Response::json(out);
  });
  app.get("/titles/{id}", [&](const squadron::Request& req) -> squadron::Response {
    auto it = by_id.find(req.param("id"));
    if (it == by_id.end())
      return squadron::Response::problem(404, "no title \"" + std::string(req.param("id")) + "\"");
    return squadron::Response::json(*it->second);
  });
  app.get("/genres", [&](const squadron::Request&) {
    std::map<std::string, int> count;
    for (const auto& t : titles) {
      for (const auto& g : t.at("genres").as_array()) {
        if (g.is_string()) ++count[std::string(g.as_string())];
      }
    }
    json::object out;
    for (const auto& [g, n] : count) out[g] = n;
    return json::value(std::move(out));
  });
  return app.run(argc, argv);
}
