// The `squadron` command: validate, up [-d], ps, scale, restart, deploy, apply, rollback,
// history, logs, events, down, export kubernetes. Every command takes
// -f FILE (default ./squadron.yaml), validates it first (exit 2 with every problem), and finds
// the running fleet through `.squadron/` beside it.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "agent.hpp"
#include "commands.hpp"
#include "gateway.hpp"
#include "server.hpp"
#include "squadron/control/kubernetes.hpp"
#include "squadron/control/manifest.hpp"
#include "squadron/core/duration.hpp"
#include "up.hpp"

namespace {

// Loads the manifest, or prints every problem and returns nullopt (exit 2: nothing starts).
std::optional<squadron::control::Manifest> load_or_report(const std::string& file,
                                                          const char* consequence) {
  auto result = squadron::control::load_manifest(file);
  if (!result.ok()) {
    for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "%s: %zu problem%s; %s\n", file.c_str(), result.errors.size(),
                 result.errors.size() == 1 ? "" : "s", consequence);
    return std::nullopt;
  }
  return std::move(result.manifest);
}

int validate(const squadron::control::Manifest& m, const std::string& file) {
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

// A CLI11 validator for durations ("30s", "500ms", "2m").
const CLI::Validator kDuration(
    [](std::string& s) -> std::string {
      return squadron::core::parse_duration(s) ? "" : "expected a duration like 30s or 500ms";
    },
    "DURATION");

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"squadron: run a fleet of microservices from squadron.yaml"};
  app.require_subcommand(1);
  app.fallthrough();  // -f may come before or after the subcommand
  std::string file = "squadron.yaml";
  std::string timeout = "60s";
  app.add_option("-f,--file", file, "the manifest")->capture_default_str();

  auto* validate_cmd =
      app.add_subcommand("validate", "check a manifest and report every problem (exit 2 if any)");

  squadron::apps::UpOptions up_options;
  auto* up_cmd = app.add_subcommand(
      "up", "run every service of the manifest; in the foreground Ctrl-C stops them");
  up_cmd->add_flag("-d,--detach", up_options.detach,
                   "run in the background; return once every instance is ready (exit 1 if one "
                   "fails)");
  up_cmd->add_flag("--require-limits", up_options.require_limits,
                   "refuse to start when no cgroup can hold the services' resource limits "
                   "(default: warn once and run without them)");
  up_cmd->add_option("--timeout", timeout, "with -d: how long to wait for ready")
      ->check(kDuration)
      ->capture_default_str();

  bool as_json = false;
  auto* ps_cmd = app.add_subcommand("ps", "list every instance of the running fleet");
  ps_cmd->add_flag("--json", as_json,
                   "a JSON array of {service,id,pid,port,state,restarts,uptime_s,revision}");

  std::vector<std::string> assignments;
  bool no_wait = false;
  auto* scale_cmd =
      app.add_subcommand("scale", "set the number of instances of services (SERVICE=N ...)");
  scale_cmd->add_option("assignments", assignments, "SERVICE=N")->required();
  scale_cmd->add_flag("--no-wait", no_wait, "return at once instead of when they are ready");
  scale_cmd->add_option("--timeout", timeout, "how long to wait for ready")
      ->check(kDuration)
      ->capture_default_str();

  std::vector<std::string> restart_services;
  auto* restart_cmd = app.add_subcommand(
      "restart",
      "replace the instances of services one at a time, each once its successor is "
      "ready");
  restart_cmd->add_option("services", restart_services, "SERVICE")->required();
  restart_cmd->add_flag("--no-wait", no_wait, "return at once instead of when it is done");
  restart_cmd->add_option("--timeout", timeout, "how long to wait")
      ->check(kDuration)
      ->capture_default_str();

  std::string deploy_service;
  std::vector<std::string> deploy_env;
  std::string deploy_command;
  auto* deploy_cmd = app.add_subcommand(
      "deploy",
      "roll a service to a new revision: new instances one at a time, each old one retired once "
      "its successor is ready; rolled back by itself if the new one fails");
  deploy_cmd->add_option("service", deploy_service, "SERVICE")->required();
  deploy_cmd->add_option("--env", deploy_env, "NAME=VALUE to set (NAME= removes it); repeatable");
  deploy_cmd->add_option("--command", deploy_command, "the new command line");
  deploy_cmd->add_flag("--no-wait", no_wait, "return at once instead of when it is done");
  deploy_cmd->add_option("--timeout", timeout, "how long to wait")
      ->check(kDuration)
      ->capture_default_str();

  bool dry_run = false;
  auto* apply_cmd = app.add_subcommand(
      "apply",
      "bring the running fleet to the manifest as edited: roll services whose definition "
      "changed, update routes and policies in place, start added services, stop removed ones");
  apply_cmd->add_flag("--dry-run", dry_run, "only print what would change");
  apply_cmd->add_flag("--no-wait", no_wait, "return at once instead of when it is done");
  apply_cmd->add_option("--timeout", timeout, "how long to wait")
      ->check(kDuration)
      ->capture_default_str();

  std::string rollback_service;
  auto* rollback_cmd =
      app.add_subcommand("rollback", "return a service to the revision before the current one");
  rollback_cmd->add_option("service", rollback_service, "SERVICE")->required();
  rollback_cmd->add_flag("--no-wait", no_wait, "return at once instead of when it is done");
  rollback_cmd->add_option("--timeout", timeout, "how long to wait")
      ->check(kDuration)
      ->capture_default_str();

  std::string history_service;
  auto* history_cmd = app.add_subcommand("history", "list a service's revisions");
  history_cmd->add_option("service", history_service, "SERVICE")->required();

  std::string log_service;
  bool follow = false;
  int tail = 100;
  auto* logs_cmd = app.add_subcommand("logs", "print the output of the fleet's instances");
  logs_cmd->add_option("service", log_service, "a service or an instance id (default: all)");
  logs_cmd->add_flag("--follow", follow, "keep printing new output until the fleet stops");
  logs_cmd->add_option("--tail,-n", tail, "lines per instance, up to 1000")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();

  std::string events_service;
  bool events_follow = false;
  auto* events_cmd = app.add_subcommand(
      "events", "print the fleet's events: state changes, commands, autoscaling decisions");
  events_cmd->add_option("service", events_service,
                         "only this service's, or this instance's (default: all)");
  events_cmd->add_flag("--follow", events_follow, "keep printing new events");

  auto* down_cmd = app.add_subcommand("down", "stop every instance and the fleet's process");
  down_cmd->add_option("--timeout", timeout, "how long to wait for it to end")
      ->check(kDuration)
      ->capture_default_str();

  squadron::control::ExportOptions export_options;
  std::vector<std::string> export_images;
  std::string export_output = "-";
  bool no_secret_values = false;
  auto* export_cmd = app.add_subcommand("export", "the manifest for another engine");
  auto* kubernetes_cmd = export_cmd->add_subcommand(
      "kubernetes", "Deployments, Services, HPAs, Jobs, an Ingress, ... as one YAML stream");
  export_cmd->require_subcommand(1);
  kubernetes_cmd->add_option("--namespace", export_options.ns, "metadata.namespace of each object");
  kubernetes_cmd->add_option("--image", export_images,
                             "SERVICE=IMAGE: the image a service runs from (repeat; over image:)");
  kubernetes_cmd->add_option("-o,--output", export_output, "the file to write (- : stdout)")
      ->capture_default_str();
  kubernetes_cmd->add_flag("--no-secret-values", no_secret_values,
                           "reference the Secrets instead of writing their values");
  kubernetes_cmd->add_option("--ingress-class", export_options.ingress_class,
                             "the Ingress's ingressClassName (default: the cluster's)");
  kubernetes_cmd->add_flag("--gateway", export_options.gateway,
                           "Squadron's gateway in the cluster, between the Ingress and the "
                           "services (its image: --image gateway=IMAGE)");

  squadron::apps::GatewayOptions gateway_options;
  auto* gateway_cmd = app.add_subcommand(
      "gateway", "the fleet's front door (started by `squadron up`; rarely run by hand)");
  gateway_cmd->add_option("--control", gateway_options.control,
                          "the control API's URL (in a fleet; `squadron up` gives it)");
  gateway_cmd->add_option("-c,--config", gateway_options.config,
                          "standalone: routes, policies and upstreams from this file (reloaded on "
                          "SIGHUP or change; see docs/gateway.md)");
  gateway_cmd->add_option("--host", gateway_options.host, "address to listen on")
      ->envname("HOST")
      ->capture_default_str();
  gateway_cmd->add_option("--port", gateway_options.port, "port to listen on (default: $PORT)");
  gateway_cmd->add_option("--threads", gateway_options.threads, "I/O threads (0: one per core)")
      ->envname("SQUADRON_THREADS");
  gateway_cmd->add_option("--internal", gateway_options.internal,
                          "SERVICE=PORT: a loopback listener sending everything to SERVICE");
  gateway_cmd
      ->add_option("--admin", gateway_options.admin,
                   "loopback port of the admin endpoints /metrics, /metrics.json, /healthz "
                   "(0: a free one)")
      ->check(CLI::Range(0, 65535));
  gateway_cmd->add_option("--spare", gateway_options.spares,
                          "a loopback port held for a service added later (repeat)");
  gateway_cmd->add_option("--tcp", gateway_options.tcp,
                          "an --internal or --spare port that passes TCP connections through to "
                          "its service's instances (protocol: tcp; repeat)");
  gateway_cmd->add_option("--trusted-proxy", gateway_options.trusted_proxies,
                          "an address or CIDR block whose X-Forwarded-For is believed (repeat)");
  gateway_cmd->add_flag("--listen-fds", gateway_options.listen_fds,
                        "the listeners are inherited as descriptors 3, 4, ... (front door, "
                        "--internal ones in order, --admin, --redirect): how `squadron up` "
                        "starts it");
  gateway_cmd->add_option("--tls-cert", gateway_options.tls_cert,
                          "the front door speaks HTTPS with this PEM certificate (repeat with "
                          "--tls-key for more, chosen by SNI; the first is the default)");
  gateway_cmd->add_option("--tls-key", gateway_options.tls_key,
                          "the PEM key of each --tls-cert, in the same order");
  gateway_cmd->add_option("--redirect", gateway_options.redirect,
                          "HOST:PORT of a plain listener answering 308 to https:// (with "
                          "--tls-cert)");
  gateway_cmd
      ->add_option("--idle-timeout", gateway_options.idle_timeout,
                   "seconds a keep-alive connection may wait for its next request (default 60)")
      ->check(CLI::Range(1, 86400));
  gateway_cmd->add_flag("--hsts", gateway_options.hsts,
                        "answers over TLS carry Strict-Transport-Security (two years)");

  squadron::apps::AgentCliOptions agent_options;
  auto* agent_cmd = app.add_subcommand(
      "agent", "a cluster host's agent: runs the instances the fleet's leader places on this host");
  agent_cmd->add_option("--etcd", agent_options.etcd, "an etcd member, ADDRESS:PORT (repeat)")
      ->required();
  agent_cmd->add_option("--fleet", agent_options.fleet, "the fleet's name (its manifest's name:)")
      ->required();
  agent_cmd->add_option("--name", agent_options.name, "this host's name (such as h1)")->required();
  agent_cmd
      ->add_option("--address", agent_options.address, "the address other hosts reach this one at")
      ->required();
  agent_cmd->add_option("--label", agent_options.labels, "KEY=VALUE, for placement (repeat)");
  agent_cmd->add_option("--ttl", agent_options.ttl,
                        "the host's lease: its instances leave the fleet this long after the "
                        "agent is gone (default 5s)");
  agent_cmd
      ->add_option("--gateway", agent_options.gateway_port,
                   "run the host's gateway on ADDRESS:PORT, routing to every host (0: none)")
      ->check(CLI::Range(0, 65535));
  agent_cmd
      ->add_option("--gateway-admin", agent_options.gateway_admin,
                   "the host gateway's admin endpoints (/metrics, /upstreams) on 127.0.0.1:PORT "
                   "(0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  agent_cmd->add_option("--control", agent_options.control,
                        "a server's control API URL, which the host's gateway follows (repeat)");
  agent_cmd->add_option(
      "--state-dir", agent_options.state_dir,
      "where instances' logs and secrets go (default /var/lib/squadron/FLEET/NAME)");

  squadron::apps::ServerOptions server_options;
  auto* server_cmd = app.add_subcommand(
      "server", "a cluster fleet's control-plane server (one leads, the others stand by)");
  server_cmd->add_option("--name", server_options.name, "this server's name (such as s1)")
      ->required();
  server_cmd->add_option("--listen", server_options.listen,
                         "the control API's HOST:PORT (default: the manifest's control.listen)");
  server_cmd->add_option("--advertise", server_options.advertise,
                         "the URL the other servers and the CLI reach it at (default: "
                         "http://LISTEN)");
  server_cmd->add_option("--etcd", server_options.etcd,
                         "an etcd member, ADDRESS:PORT (repeat; overrides cluster.etcd)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (*agent_cmd) return squadron::apps::run_agent(agent_options);
  if (*server_cmd) {
    server_options.file = file;
    return squadron::apps::run_server(server_options, argc, argv);
  }
  if (*gateway_cmd) {  // no manifest: its routes come from the control API or its own file
    if (gateway_options.config.empty() == gateway_options.control.empty()) {
      std::fprintf(stderr,
                   "squadron gateway: give -c gateway.yaml (standalone, in front of any HTTP "
                   "services) or --control URL (in a fleet, as `squadron up` starts it)\n");
      return 2;
    }
    return gateway_options.config.empty() ? squadron::apps::run_gateway(gateway_options)
                                          : squadron::apps::run_gateway_file(gateway_options);
  }
  if ((*logs_cmd || *events_cmd) && !std::filesystem::exists(file)) {
    // `-f` names the manifest in every command (it once meant follow after logs and events).
    std::fprintf(stderr,
                 "squadron: -f names the manifest, and \"%s\" is no file; to keep printing, say "
                 "--follow (squadron %s --follow [SERVICE])\n",
                 file.c_str(), *logs_cmd ? "logs" : "events");
    return 2;
  }
  const auto manifest = load_or_report(
      file, *apply_cmd ? "nothing was changed (the fleet runs as it did)" : "nothing was started");
  if (!manifest) return 2;
  const auto wait_for = *squadron::core::parse_duration(timeout);
  namespace apps = squadron::apps;
  if (*validate_cmd) return validate(*manifest, file);
  if (*export_cmd) {
    for (const auto& i : export_images) {
      const auto eq = i.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == i.size()) {
        std::fprintf(stderr,
                     "squadron: --image \"%s\": write SERVICE=IMAGE, like web=registry/web:1.0\n",
                     i.c_str());
        return 2;
      }
      export_options.images[i.substr(0, eq)] = i.substr(eq + 1);
    }
    export_options.secret_values = !no_secret_values;
    return apps::export_kubernetes(*manifest, export_options, export_output);
  }
  if (*up_cmd) {
    up_options.timeout = wait_for;
    return apps::up(*manifest, up_options);
  }
  if (*ps_cmd) return apps::ps(*manifest, as_json);
  if (*scale_cmd) return apps::scale(*manifest, assignments, !no_wait, wait_for);
  if (*restart_cmd) return apps::restart(*manifest, restart_services, !no_wait, wait_for);
  if (*deploy_cmd)
    return apps::deploy(*manifest, deploy_service, deploy_env, deploy_command, !no_wait, wait_for);
  if (*apply_cmd) return apps::apply(*manifest, dry_run, !no_wait, wait_for);
  if (*rollback_cmd) return apps::rollback(*manifest, rollback_service, !no_wait, wait_for);
  if (*history_cmd) return apps::history(*manifest, history_service);
  if (*logs_cmd) return apps::logs(*manifest, log_service, follow, tail);
  if (*events_cmd) return apps::events(*manifest, events_service, events_follow);
  if (*down_cmd) {
    // Long enough for every instance's stop grace.
    return apps::down(*manifest, std::max(wait_for, std::chrono::milliseconds(60'000)));
  }
  return 2;
}
