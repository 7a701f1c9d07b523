#include "squadron/core/interpolate.hpp"

namespace squadron::core {
namespace {

bool name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

// The end of a ${...} that starts at `open` (its '{'), nesting braces of inner references.
std::optional<std::size_t> closing_brace(std::string_view text, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return i;
  }
  return std::nullopt;
}

}  // namespace

std::string escape_dollars(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '$') out.push_back('$');
    out.push_back(c);
  }
  return out;
}

bool variable_name(std::string_view name) noexcept {
  if (name.empty() || !name_start(name[0])) return false;
  for (char c : name) {
    if (!name_char(c)) return false;
  }
  return true;
}

std::variant<std::string, VariableError> interpolate(std::string_view text,
                                                     const VariableLookup& lookup,
                                                     const InterpolateOptions& options) {
  std::string out;
  out.reserve(text.size());
  auto put = [&](std::string_view v) {
    out += options.for_later_pass ? escape_dollars(v) : std::string(v);
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    // A '$' that starts no reference stays a '$' (doubled for a later pass, so that what
    // follows it cannot make one there).
    const auto literal_dollar = [&] { out += options.for_later_pass ? "$$" : "$"; };
    if (c != '$') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) {
      literal_dollar();
      ++i;
      continue;
    }
    const char next = text[i + 1];
    if (next == '$') {
      out += options.for_later_pass ? "$$" : "$";
      i += 2;
      continue;
    }
    if (name_start(next)) {  // $NAME
      std::size_t end = i + 1;
      while (end < text.size() && name_char(text[end])) ++end;
      const std::string_view name = text.substr(i + 1, end - i - 1);
      if (options.keep && options.keep(name)) {
        out.append(text.substr(i, end - i));
      } else if (auto v = lookup(name)) {
        put(*v);
      } else {
        return VariableError{i, "variable " + std::string(name) + " is not set",
                             "set it in the environment or in .env beside the manifest, give a "
                             "default (${" +
                                 std::string(name) + ":-value}), or write $$ for a literal $"};
      }
      i = end;
      continue;
    }
    if (next != '{') {  // $1, $!, $( ...: not a reference
      literal_dollar();
      ++i;
      continue;
    }
    const auto close = closing_brace(text, i + 1);
    if (!close) {
      return VariableError{i, "unterminated ${", "close it with }, or write $$ for a literal $"};
    }
    const std::string_view inner = text.substr(i + 2, *close - i - 2);
    std::size_t n = 0;
    while (n < inner.size() && name_char(inner[n])) ++n;
    const std::string_view name = inner.substr(0, n);
    if (!variable_name(name)) {
      return VariableError{i, "\"${" + std::string(inner) + "}\" names no variable",
                           "a name is letters, digits and _, not starting with a digit"};
    }
    std::string_view op = inner.substr(n);
    std::string_view arg;
    if (!op.empty()) {
      const std::size_t len = op[0] == ':' && op.size() >= 2 ? 2 : 1;
      arg = op.substr(len);
      op = op.substr(0, len);
      if (op != ":-" && op != "-" && op != ":?" && op != "?" && op != ":+" && op != "+") {
        return VariableError{i, "\"${" + std::string(inner) + "}\": unknown modifier",
                             "write ${NAME}, ${NAME:-default}, ${NAME:?message} or ${NAME:+other}"};
      }
    }
    const std::size_t end = *close + 1;
    if (options.keep && options.keep(name)) {
      out.append(text.substr(i, end - i));
      i = end;
      continue;
    }
    const auto value = lookup(name);
    const bool empty = !value || value->empty();
    const bool colon = !op.empty() && op[0] == ':';
    const bool missing = colon ? empty : !value;
    auto nested = [&](std::string_view t) -> std::variant<std::string, VariableError> {
      auto r = interpolate(t, lookup, options);
      if (auto* e = std::get_if<VariableError>(&r)) e->offset += i;
      return r;
    };
    if (op.empty()) {
      if (!value) {
        return VariableError{i, "variable " + std::string(name) + " is not set",
                             "set it in the environment or in .env beside the manifest, or give "
                             "a default: ${" +
                                 std::string(name) + ":-value}"};
      }
      put(*value);
    } else if (op.back() == '-') {
      if (!missing) {
        put(*value);
      } else {
        auto d = nested(arg);
        if (auto* e = std::get_if<VariableError>(&d)) return *e;
        out += std::get<std::string>(d);
      }
    } else if (op.back() == '?') {
      if (missing) {
        return VariableError{i,
                             arg.empty() ? "variable " + std::string(name) + " is required"
                                         : std::string(name) + ": " + std::string(arg),
                             "set " + std::string(name) + " in the environment or in .env"};
      }
      put(*value);
    } else {  // + : the other text when set
      if (!missing) {
        auto d = nested(arg);
        if (auto* e = std::get_if<VariableError>(&d)) return *e;
        out += std::get<std::string>(d);
      }
    }
    i = end;
  }
  return out;
}

}  // namespace squadron::core
