// The `squadron` command. Today: `squadron validate [-f FILE]`. The fleet commands (up, ps,
// scale, logs, down...) arrive with the runtime.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "squadron/control/manifest.hpp"

namespace {

int validate(const std::string& file) {
  const auto result = squadron::control::load_manifest(file);
  if (!result.ok()) {
    for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "%s: %zu problem%s; nothing was started\n", file.c_str(),
                 result.errors.size(), result.errors.size() == 1 ? "" : "s");
    return 2;
  }
  const auto& m = *result.manifest;
  std::string names;
  int instances = 0;
  for (const auto& s : m.services) {
    names += (names.empty() ? "" : ", ") + s.name + " x" + std::to_string(s.replicas);
    instances += s.replicas;
  }
  std::printf("%s: ok: fleet \"%s\", %zu service%s (%s), %d instance%s\n", file.c_str(),
              m.name.c_str(), m.services.size(), m.services.size() == 1 ? "" : "s", names.c_str(),
              instances, instances == 1 ? "" : "s");
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (*validate_cmd) return validate(file);
  return 2;
}
