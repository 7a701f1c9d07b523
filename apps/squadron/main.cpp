// The `squadron` command: `validate` and `up` (foreground) today; ps, scale, logs, down and
// `up -d` arrive with the control plane.
#include <cstdio>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "squadron/control/manifest.hpp"
#include "up.hpp"

namespace {

// Loads the manifest, or prints every problem and returns nullopt (exit 2: nothing starts).
std::optional<squadron::control::Manifest> load_or_report(const std::string& file) {
  auto result = squadron::control::load_manifest(file);
  if (!result.ok()) {
    for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "%s: %zu problem%s; nothing was started\n", file.c_str(),
                 result.errors.size(), result.errors.size() == 1 ? "" : "s");
    return std::nullopt;
  }
  return std::move(result.manifest);
}

int validate(const std::string& file) {
  const auto manifest = load_or_report(file);
  if (!manifest) return 2;
  std::string names;
  int instances = 0;
  for (const auto& s : manifest->services) {
    names += (names.empty() ? "" : ", ") + s.name + " x" + std::to_string(s.replicas);
    instances += s.replicas;
  }
  std::printf("%s: ok: fleet \"%s\", %zu service%s (%s), %d instance%s\n", file.c_str(),
              manifest->name.c_str(), manifest->services.size(),
              manifest->services.size() == 1 ? "" : "s", names.c_str(), instances,
              instances == 1 ? "" : "s");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"squadron: run a fleet of microservices from squadron.yaml"};
  app.require_subcommand(1);
  std::string file = "squadron.yaml";
  auto* validate_cmd =
      app.add_subcommand("validate", "check a manifest and report every problem (exit 2 if any)");
  validate_cmd->add_option("-f,--file", file, "the manifest")->capture_default_str();
  auto* up_cmd = app.add_subcommand(
      "up", "run every service of the manifest in the foreground; Ctrl-C stops them");
  up_cmd->add_option("-f,--file", file, "the manifest")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (*validate_cmd) return validate(file);
  if (*up_cmd) {
    const auto manifest = load_or_report(file);
    return manifest ? squadron::apps::up(*manifest) : 2;
  }
  return 2;
}
