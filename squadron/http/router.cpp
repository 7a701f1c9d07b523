#include "squadron/http/router.hpp"

#include <optional>

#include <boost/url/pct_string_view.hpp>

namespace squadron::http {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

class ErrorCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "squadron.http"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kBadRoutePattern:
        return "bad route pattern: it must start with '/' and use whole-segment {name} parameters";
      case Errc::kDuplicateRoute:
        return "this method and pattern are already registered";
    }
    return "unknown squadron.http error";
  }
};

std::string decode_segment(std::string_view s) {
  if (s.find('%') == std::string_view::npos) return std::string(s);
  auto pct = boost::urls::make_pct_string_view(s);
  if (!pct) return std::string(s);  // not valid percent-encoding: hand over as received
  return pct->decode();
}

}  // namespace

const boost::system::error_category& category() noexcept {
  static const ErrorCategory c;
  return c;
}

struct Router::Node {
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> statics;
  std::unique_ptr<Node> param;
  std::string param_name;
  std::array<std::size_t, kMethodCount> by_method{};
  std::vector<std::pair<std::string, std::size_t>> other_methods;
  std::size_t any = kNone;

  Node() { by_method.fill(kNone); }
  bool has_routes() const {
    if (any != kNone || !other_methods.empty()) return true;
    for (auto id : by_method)
      if (id != kNone) return true;
    return false;
  }
};

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

boost::system::error_code Router::add(std::string_view method, std::string_view pattern,
                                      std::size_t id) {
  if (pattern.empty() || pattern.front() != '/') return Errc::kBadRoutePattern;
  Node* node = root_.get();
  std::string_view rest = pattern.substr(1);
  while (true) {
    const auto slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      const std::string_view name = seg.substr(1, seg.size() - 2);
      if (name.find_first_of("{}/") != std::string_view::npos || name.empty()) {
        return Errc::kBadRoutePattern;
      }
      if (!node->param) {
        node->param = std::make_unique<Node>();
        node->param->param_name = std::string(name);
      } else if (node->param->param_name != name) {
        return Errc::kBadRoutePattern;  // two names for the same parameter position
      }
      node = node->param.get();
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) return Errc::kBadRoutePattern;
      Node* next = nullptr;
      for (auto& [s, child] : node->statics) {
        if (s == seg) next = child.get();
      }
      if (next == nullptr) {
        node->statics.emplace_back(std::string(seg), std::make_unique<Node>());
        next = node->statics.back().second.get();
      }
      node = next;
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }

  std::size_t* slot = nullptr;
  if (method == "*") {
    slot = &node->any;
  } else {
    Method m = Method::kOther;
    for (std::size_t i = 0; i + 1 < kMethodCount; ++i) {
      if (method_name(static_cast<Method>(i)) == method) m = static_cast<Method>(i);
    }
    if (m != Method::kOther) {
      slot = &node->by_method[static_cast<std::size_t>(m)];
    } else {
      for (auto& [name, rid] : node->other_methods) {
        if (name == method) slot = &rid;
      }
      if (slot == nullptr) {
        node->other_methods.emplace_back(std::string(method), kNone);
        slot = &node->other_methods.back().second;
      }
    }
  }
  if (*slot != kNone) return Errc::kDuplicateRoute;
  *slot = id;
  return {};
}

Router::Match Router::match(Request& req) const {
  // Segments of the path, matched depth-first: static children before the parameter child.
  std::string_view path = req.path();
  Match result;
  if (path.empty() || path.front() != '/') return result;
  path.remove_prefix(1);

  std::vector<std::pair<std::string_view, std::string_view>> params;  // (name, raw value)
  const Node* found = nullptr;

  // Depth-first over the segments; paths are short, so recursion depth is small.
  auto visit = [&](auto&& self, const Node* node, std::string_view rest) -> bool {
    const auto slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    const std::string_view next = last ? std::string_view{} : rest.substr(slash + 1);
    for (const auto& [s, child] : node->statics) {
      if (s != seg) continue;
      if (last ? child->has_routes() : self(self, child.get(), next)) {
        if (last) found = child.get();
        return true;
      }
    }
    if (node->param && !seg.empty()) {
      params.emplace_back(node->param->param_name, seg);
      if (last ? node->param->has_routes() : self(self, node->param.get(), next)) {
        if (last) found = node->param.get();
        return true;
      }
      params.pop_back();
    }
    return false;
  };
  if (!visit(visit, root_.get(), path)) return result;

  const Method m = req.method();
  std::size_t id = kNone;
  if (m != Method::kOther) {
    id = found->by_method[static_cast<std::size_t>(m)];
    if (id == kNone && m == Method::kHead)
      id = found->by_method[static_cast<std::size_t>(Method::kGet)];
  } else {
    for (const auto& [name, rid] : found->other_methods) {
      if (name == req.method_name()) id = rid;
    }
  }
  if (id == kNone) id = found->any;
  if (id == kNone) {
    result.kind = Match::kMethodNotAllowed;
    for (std::size_t i = 0; i + 1 < kMethodCount; ++i) {
      if (found->by_method[i] == kNone) continue;
      if (!result.allow.empty()) result.allow += ", ";
      result.allow += method_name(static_cast<Method>(i));
      if (static_cast<Method>(i) == Method::kGet && found->by_method[1] == kNone)
        result.allow += ", HEAD";
    }
    for (const auto& [name, rid] : found->other_methods) {
      if (!result.allow.empty()) result.allow += ", ";
      result.allow += name;
    }
    return result;
  }
  req.clear_params();
  for (const auto& [name, raw] : params) req.add_param(name, decode_segment(raw));
  result.kind = Match::kFound;
  result.id = id;
  return result;
}

}  // namespace squadron::http
