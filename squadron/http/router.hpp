// Maps (method, path) to a route id. Patterns are made of static segments and `{name}`
// parameters, one per segment: "/users/{id}/orders/{order}". Static segments win over
// parameters; a path that matches with a wrong method yields 405 and the Allow list.
//
//   Router r;
//   r.add("GET", "/users/{id}", 7);
//   auto m = r.match(req);            // m.kind == Match::kFound, m.id == 7, req.param("id")
//
// Thread safety: add() before serving; match() is const and safe from any number of threads.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/system/error_code.hpp>

#include "squadron/http/request.hpp"

namespace squadron::http {

enum class Errc {
  kBadRoutePattern = 1,  // a pattern that does not start with '/', or has a malformed {param}
  kDuplicateRoute,       // the same method and pattern registered twice
};
const boost::system::error_category& category() noexcept;
inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), category()};
}

class Router final {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Registers `id` for `method` ("GET", "PURGE"; "*" for any method) on `pattern`.
  [[nodiscard]] boost::system::error_code add(std::string_view method, std::string_view pattern,
                                              std::size_t id);

  struct Match {
    enum Kind { kFound, kNotFound, kMethodNotAllowed } kind = kNotFound;
    std::size_t id = 0;
    std::string allow;  // for kMethodNotAllowed: "GET, HEAD, POST"
  };
  // Finds the route for `req`'s method and path and stores its path parameters in `req`.
  // HEAD falls back to GET.
  Match match(Request& req) const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
};

}  // namespace squadron::http

template <>
struct boost::system::is_error_code_enum<squadron::http::Errc> : std::true_type {};
