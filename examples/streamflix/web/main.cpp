// streamflix's front page, at the gateway's "/": the catalogue with average ratings and "because
// you watched" recommendations, built by calling catalog, ratings and recommendations by name
// (squadron::Client, through the gateway's per-service addresses). A service that cannot answer
// only blanks its part of the page: without ratings the page still renders, marked
// "ratings unavailable", within the ratings call's 1 s timeout.
//   GET /[?watched=t05]
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/service/service.hpp"

namespace json = boost::json;

namespace {

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string str(const json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  const auto* x = o != nullptr ? o->if_contains(key) : nullptr;
  return x != nullptr && x->is_string() ? std::string(x->as_string()) : std::string();
}

std::optional<json::value> body_json(const squadron::Response& r) {
  if (r.status != 200) return std::nullopt;
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec) return std::nullopt;
  return v;
}

std::string stars(const json::object* averages, const std::string& id) {
  if (averages == nullptr) return "<span class=na>ratings unavailable</span>";
  const auto* a = averages->if_contains(id);
  if (a == nullptr || !a->is_object()) return "<span class=na>not rated yet</span>";
  return fmt::format("<span class=stars>&#9733; {:.1f}</span> <small>({} ratings)</small>",
                     a->at("average").to_number<double>(),
                     a->at("count").to_number<std::int64_t>());
}

constexpr std::string_view kStyle = R"(<style>
body{font-family:system-ui,sans-serif;margin:0;background:#141414;color:#eee}
header{padding:16px 32px;background:#000;display:flex;align-items:baseline;gap:16px}
header h1{color:#e50914;margin:0;font-size:28px}
main{padding:16px 32px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.card{background:#222;border-radius:6px;padding:12px}
.card a{color:#fff;text-decoration:none;font-weight:600}
.card p{color:#aaa;font-size:13px;margin:6px 0}
.genres{color:#8c8c8c;font-size:12px}
.stars{color:#f5c518}.na{color:#e87c03;font-size:13px}
footer{padding:16px 32px;color:#666;font-size:12px}
</style>)";

}  // namespace

int main(int argc, char** argv) {
  squadron::Service app{"web"};
  const auto catalog = squadron::Client::for_service("catalog");
  // Ratings and recommendations are extras on this page: a short leash.
  const auto ratings =
      squadron::Client::for_service("ratings", {.timeout = std::chrono::seconds(1)});
  const auto recommendations =
      squadron::Client::for_service("recommendations", {.timeout = std::chrono::seconds(2)});
  const char* instance_env = std::getenv("SQUADRON_INSTANCE");
  const std::string instance = instance_env != nullptr ? instance_env : "web";

  app.get("/", [=](const squadron::Request& req) -> squadron::Task<squadron::Response> {
    const auto titles_answer = co_await catalog.get("/titles", &req);
    const auto titles = body_json(titles_answer);
    if (!titles || !titles->is_array()) {
      co_return squadron::Response::problem(
          503, fmt::format("the catalogue is unavailable ({}): {}", titles_answer.status,
                           titles_answer.body));
    }
    const auto averages_doc = body_json(co_await ratings.get("/ratings/averages", &req));
    const json::object* averages =
        averages_doc && averages_doc->is_object() ? &averages_doc->as_object() : nullptr;
    // A title id (letters, digits, - and _); anything else: the first title.
    std::string watched = req.query_param("watched").value_or("");
    const bool plain = !watched.empty() && watched.size() <= 64 &&
                       watched.find_first_not_of(
                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                           "VWXYZ0123456789-_") == std::string::npos;
    if (!plain) watched = titles->as_array().empty() ? "" : str(titles->as_array()[0], "id");

    std::string html =
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Streamflix</title>";
    html += kStyle;
    html +=
        "</head><body><header><h1>STREAMFLIX</h1><span>a fleet of microservices, "
        "in miniature</span></header><main>";

    // Because you watched...
    const auto recs = body_json(
        co_await recommendations.get("/recommendations?watched=" + watched + "&limit=4", &req));
    html += "<section id=recommendations>";
    if (recs && recs->is_object() && recs->as_object().contains("items")) {
      html += fmt::format("<h2>Because you watched {}</h2><div class=grid>",
                          escape(str(recs->at("watched"), "title")));
      for (const auto& t : recs->at("items").as_array()) {
        const auto id = str(t, "id");
        html += fmt::format("<div class=card><a href=\"/?watched={}\">{}</a><p>{}</p></div>",
                            escape(id), escape(str(t, "title")), stars(averages, id));
      }
      html += "</div>";
    } else {
      html += "<h2>Recommendations</h2><p class=na>recommendations unavailable</p>";
    }
    html += "</section><section id=catalogue><h2>The catalogue</h2><div class=grid>";
    for (const auto& t : titles->as_array()) {
      const auto id = str(t, "id");
      std::string genres;
      if (const auto* g = t.as_object().if_contains("genres"); g != nullptr && g->is_array()) {
        for (const auto& x : g->as_array()) {
          if (x.is_string()) genres += (genres.empty() ? "" : " · ") + std::string(x.as_string());
        }
      }
      const auto* year = t.as_object().if_contains("year");
      html += fmt::format(
          "<div class=card data-id=\"{}\"><a href=\"/?watched={}\">{}</a> <small>{}</small>"
          "<div class=genres>{}</div><p>{}</p><p>{}</p></div>",
          escape(id), escape(id), escape(str(t, "title")),
          year != nullptr && year->is_int64() ? std::to_string(year->as_int64()) : "",
          escape(genres), escape(str(t, "summary")), stars(averages, id));
    }
    html += fmt::format(
        "</div></section></main><footer>served by {}; catalogue, ratings and "
        "recommendations by their own services</footer></body></html>",
        escape(instance));
    auto res = squadron::Response::text(std::move(html));
    res.set_header("Content-Type", "text/html; charset=utf-8");
    co_return res;
  });
  return app.run(argc, argv);
}
