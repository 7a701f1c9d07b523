#include "squadron/control/env_file.hpp"

#include "squadron/core/interpolate.hpp"

namespace squadron::control {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

EnvFile parse_env_file(std::string_view text) {
  EnvFile out;
  int number = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++number;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      out.errors.push_back({number, "expected NAME=value, got \"" + std::string(line) + "\""});
      continue;
    }
    const std::string name(trim(line.substr(0, eq)));
    if (!core::variable_name(name)) {
      out.errors.push_back({number, "\"" + name + "\" is not a variable's name"});
      continue;
    }
    std::string_view raw = trim(line.substr(eq + 1));
    std::string value;
    if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
      const char q = raw.front();
      std::size_t i = 1;
      bool closed = false;
      for (; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == q) {
          closed = true;
          break;
        }
        if (q == '"' && c == '\\' && i + 1 < raw.size()) {
          const char e = raw[++i];
          value.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e);
          continue;
        }
        value.push_back(c);
      }
      const std::string_view rest = closed ? trim(raw.substr(i + 1)) : std::string_view{};
      if (!closed) {
        out.errors.push_back({number, "the value's quote is not closed on this line"});
        continue;
      }
      if (!rest.empty() && rest.front() != '#') {
        out.errors.push_back({number, "text after the closing quote"});
        continue;
      }
    } else {
      const auto comment = raw.find(" #");
      value = std::string(trim(raw.substr(0, comment)));
    }
    out.vars[name] = std::move(value);
  }
  return out;
}

}  // namespace squadron::control
