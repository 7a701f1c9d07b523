// Variables in text as docker compose writes them: ${NAME}, $NAME, ${NAME:-default} (unset or
// empty), ${NAME-default} (unset), ${NAME:?message} / ${NAME?message} (an error if unset or empty
// / unset), ${NAME:+other} (other if set and not empty), and $$ for a literal $. A $ before any
// other character stays as it is ($1, $!, $( in a shell command).
//
//   auto v = core::interpolate("http://${HOST:-localhost}:$PORT", lookup);
//   if (auto* e = std::get_if<core::VariableError>(&v)) report(e->offset, e->message);
//
// The manifest resolves what comes from the environment and .env this way when it is read, and
// leaves the names each instance gets at launch (PORT, SQUADRON_INSTANCE, ...) for the
// supervisor to expand then (`keep`). Thread safety: pure functions.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace squadron::core {

struct VariableError {
  std::size_t offset = 0;  // where in the text the reference starts
  std::string message;
  std::string hint;
};

struct InterpolateOptions {
  // References to these names stay as written (with their modifiers), for a later pass.
  std::function<bool(std::string_view)> keep;
  // $$ stays $$ (a later pass turns it into $), and values put in have their $ doubled.
  bool for_later_pass = false;
};

using VariableLookup = std::function<std::optional<std::string>(std::string_view name)>;

std::variant<std::string, VariableError> interpolate(std::string_view text,
                                                     const VariableLookup& lookup,
                                                     const InterpolateOptions& options = {});

// `value` with every $ doubled: taken as written by a later interpolate() (a value that goes
// into a template expanded at launch).
std::string escape_dollars(std::string_view value);

// Whether `name` is a variable's name: [A-Za-z_][A-Za-z0-9_]*.
bool variable_name(std::string_view name) noexcept;

}  // namespace squadron::core
