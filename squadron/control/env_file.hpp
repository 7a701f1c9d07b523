// Files of variables in docker compose's format, for `.env` beside the manifest (its values fill
// ${VAR} references) and `env_file:` (its values join a service's environment): one NAME=value a
// line, `export` before it allowed, # comments and blank lines skipped, values unquoted (a space
// and # start a comment; surrounding blanks trimmed), 'single-quoted' (as written) or
// "double-quoted" (\n, \t, \\, \" escapes).
//
//   auto vars = parse_env_file(text);
//   if (!vars.errors.empty()) report(vars.errors[0].line, vars.errors[0].message);
//
// Thread safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace squadron::control {

struct EnvFileError {
  int line = 0;  // 1-based
  std::string message;
};

struct EnvFile {
  std::map<std::string, std::string> vars;
  std::vector<EnvFileError> errors;
};

EnvFile parse_env_file(std::string_view text);

}  // namespace squadron::control
