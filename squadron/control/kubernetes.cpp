#include "squadron/control/kubernetes.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <variant>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/core/interpolate.hpp"

namespace squadron::control {

namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

// The container port every exported service listens on unless it has a fixed one ($PORT).
constexpr int kDefaultPort = 8080;
// What the preStop hook waits before the container gets its stop signal: the time for the
// endpoints controller, kube-proxy and the ingress to stop sending it new requests — in a fleet
// the gateway drops a retiring instance at once, in a cluster it takes a few seconds.
constexpr int kPreStopSeconds = 5;
constexpr const char* kSecretsDir = "/run/secrets/squadron";

// --- YAML ---

bool plain_safe(std::string_view s) {
  if (s.empty()) return false;
  static const std::set<std::string_view> kWords = {
      "true",  "false", "yes", "no", "on",  "off", "y", "n",    "null", "~",    "True",
      "False", "Yes",   "No",  "On", "Off", "Y",   "N", "Null", "NULL", "TRUE", "FALSE"};
  if (kWords.count(s) != 0) return false;
  const unsigned char first = static_cast<unsigned char>(s.front());
  // "--flag" is a string; "-1" a number, "---" a document's start.
  const bool flag =
      first == '-' && s.size() > 1 &&
      (std::isalpha(static_cast<unsigned char>(s[1])) ||
       (s[1] == '-' && s.size() > 2 && std::isalpha(static_cast<unsigned char>(s[2]))));
  if (!std::isalpha(first) && first != '/' && first != '_' && !flag) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '-' && c != '_' && c != '.' && c != '/' && c != ':' && c != '+' &&
        c != '%' && c != '=' && c != ',')
      return false;
  }
  // "a:b" is fine in a block scalar, "a: b" is not; a trailing ':' is not.
  return s.back() != ':';
}

std::string scalar(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: {
      const std::string_view s = v.get_string();
      return plain_safe(s) ? std::string(s) : json::serialize(v);  // JSON's quoting is YAML's
    }
    case json::kind::null:
      return "null";
    default:
      return json::serialize(v);
  }
}

// A string of several lines a literal block can carry as it is: printable, no tab, no line
// with leading or trailing spaces, not ending in more than one newline.
bool block_safe(const json::value& v) {
  if (!v.is_string()) return false;
  const std::string_view s = v.get_string();
  if (s.find('\n') == std::string_view::npos || s.find("\n\n") != std::string_view::npos ||
      s.front() == ' ')
    return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
    if (c == '\n' && i > 0 && s[i - 1] == ' ') return false;
  }
  return s.back() != ' ';
}

bool empty_container(const json::value& v) {
  return (v.is_object() && v.get_object().empty()) || (v.is_array() && v.get_array().empty());
}

void emit(std::string& out, const json::value& v, int indent);

void emit_object(std::string& out, const json::object& o, int indent) {
  for (const auto& [k, v] : o) {
    out.append(indent, ' ');
    out += scalar(json::value(k));
    out += ':';
    if ((v.is_object() || v.is_array()) && !empty_container(v)) {
      out += '\n';
      emit(out, v, v.is_array() ? indent : indent + 2);
    } else if (block_safe(v)) {
      // A file's text as a literal block: as written, one line a line.
      const std::string_view text = v.get_string();
      out += text.back() == '\n' ? " |\n" : " |-\n";
      std::size_t at = 0;
      while (at < text.size()) {
        auto end = text.find('\n', at);
        if (end == std::string_view::npos) end = text.size();
        if (end > at) out.append(static_cast<std::size_t>(indent) + 2, ' ');
        out.append(text.substr(at, end - at));
        out += '\n';
        at = end + 1;
      }
    } else {
      out += ' ';
      out += v.is_object() ? "{}" : v.is_array() ? "[]" : scalar(v);
      out += '\n';
    }
  }
}

void emit(std::string& out, const json::value& v, int indent) {
  if (v.is_object()) {
    emit_object(out, v.get_object(), indent);
  } else if (v.is_array()) {
    for (const auto& item : v.get_array()) {
      out.append(indent, ' ');
      out += "- ";
      if (item.is_object() && !item.get_object().empty()) {
        std::string inner;
        emit_object(inner, item.get_object(), indent + 2);
        out += inner.substr(static_cast<std::size_t>(indent) + 2);  // the first key after "- "
      } else if (item.is_array() && !item.get_array().empty()) {
        out += '\n';
        emit(out, item, indent + 2);
      } else {
        out += item.is_object() ? "{}" : item.is_array() ? "[]" : scalar(item);
        out += '\n';
      }
    }
  } else {
    out.append(indent, ' ');
    out += scalar(v);
    out += '\n';
  }
}

// --- the mapping ---

int seconds_up(milliseconds d) {
  return static_cast<int>(std::max<long long>(1, (d.count() + 999) / 1000));
}

std::string quantity_bytes(std::uint64_t b) {
  for (const auto& [suffix, shift] : {std::pair{"Gi", 30}, {"Mi", 20}, {"Ki", 10}}) {
    if (b % (std::uint64_t{1} << shift) == 0) return fmt::format("{}{}", b >> shift, suffix);
  }
  return std::to_string(b);
}

std::string quantity_cpu(std::uint64_t millicores) {
  return millicores % 1000 == 0 ? std::to_string(millicores / 1000)
                                : fmt::format("{}m", millicores);
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGKILL:
      return "SIGKILL";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGHUP:
      return "SIGHUP";
    case SIGWINCH:
      return "SIGWINCH";
    default:
      return "SIGTERM";
  }
}

// ${NAME} / $NAME of the instance's own variables as Kubernetes' $(NAME) (which it expands in
// command, args and env from the container's env), $$ as $.
std::string to_kubernetes_refs(const std::string& text) {
  auto r = core::interpolate(text, [](std::string_view name) -> std::optional<std::string> {
    return fmt::format("$({})", name);
  });
  if (auto* s = std::get_if<std::string>(&r)) return *s;
  return text;
}

int container_port(const ServiceSpec& s) { return s.port ? *s.port : kDefaultPort; }
int service_port(const ServiceSpec& s) { return s.tcp ? container_port(s) : 80; }

class Exporter {
 public:
  Exporter(const Manifest& m, const ExportOptions& o) : m_(m), o_(o) {}

  ExportResult run() {
    check_names();
    for (const auto& s : m_.services) {
      auto it = o_.images.find(s.name);
      const std::string image = it != o_.images.end() ? it->second : s.image;
      if (image.empty()) {
        result_.errors.push_back(fmt::format(
            "services.{}: no image to run it from: give the service image: registry/name:tag "
            "in the manifest, or --image {}=IMAGE",
            s.name, s.name));
      }
      images_[s.name] = image;
    }
    if (o_.gateway && o_.images.count("gateway") == 0)
      result_.errors.push_back(
          "--gateway: no image for the gateway: give --image gateway=IMAGE (an image with the "
          "squadron binary on its PATH)");
    for (const auto& [name, _] : o_.images) {
      if (m_.find(name) == nullptr && !(o_.gateway && name == "gateway") && name != "kubectl")
        result_.errors.push_back(
            fmt::format("--image {}=...: the manifest has no service \"{}\"", name, name));
    }
    if (!result_.errors.empty()) return std::move(result_);
    // First, so that it exists when the pods that run as it are made.
    if (o_.images.count("kubectl") != 0 &&
        std::any_of(m_.services.begin(), m_.services.end(),
                    [](const ServiceSpec& s) { return !s.depends_on.empty(); }))
      start_order_account();
    secrets();
    for (const auto& s : m_.services) service(s);
    if (o_.gateway) gateway();
    ingress();
    for (const auto& d : docs_) {
      result_.yaml += "---\n";
      for (const auto& c : d.comments) result_.yaml += "# " + c + "\n";
      std::string body;
      emit(body, d.object, 0);
      result_.yaml += body;
    }
    return std::move(result_);
  }

 private:
  struct Doc {
    std::vector<std::string> comments;
    json::value object;
  };

  void warn(Doc* d, std::string key, std::string text) {
    result_.warnings.push_back(key + ": " + text);
    if (d != nullptr) d->comments.push_back(key + ": " + text);
  }

  void check_names() {
    std::map<std::string, std::string> seen;
    for (const auto& s : m_.services) {
      const auto k = kubernetes_name(s.name);
      if (auto [it, fresh] = seen.emplace(k, s.name); !fresh)
        result_.errors.push_back(
            fmt::format("services.{}: its Kubernetes name \"{}\" is also services.{}'s: rename one",
                        s.name, k, it->second));
    }
  }

  json::object labels(const std::string& name) const {
    return {{"app.kubernetes.io/name", name},
            {"app.kubernetes.io/part-of", kubernetes_name(m_.name)},
            {"app.kubernetes.io/managed-by", "squadron"}};
  }
  json::object selector(const std::string& name) const {
    return {{"app.kubernetes.io/name", name},
            {"app.kubernetes.io/part-of", kubernetes_name(m_.name)}};
  }
  json::object metadata(const std::string& name, const std::string& labelled) const {
    json::object md{{"name", name}};
    if (!o_.ns.empty()) md["namespace"] = o_.ns;
    md["labels"] = labels(labelled);
    return md;
  }
  Doc& add(std::string api, std::string kind, const std::string& name,
           const std::string& labelled) {
    docs_.push_back({{},
                     json::object{{"apiVersion", std::move(api)},
                                  {"kind", std::move(kind)},
                                  {"metadata", metadata(name, labelled)}}});
    return docs_.back();
  }

  std::string secret_object(const std::string& secret) const {
    return kubernetes_name(m_.name) + "-" + kubernetes_name(secret);
  }

  void secrets() {
    std::map<std::string, const supervisor::SecretSpec*> all;
    for (const auto& s : m_.services)
      for (const auto& sec : s.secrets) all.emplace(sec.name, &sec);
    for (const auto& [name, sec] : all) {
      const std::string object = secret_object(name);
      if (!o_.secret_values) {
        result_.warnings.push_back(fmt::format(
            "secrets.{}: not exported (--no-secret-values): create it before applying: kubectl "
            "create secret generic {} --from-file={}=FILE{}",
            name, object, name, o_.ns.empty() ? "" : " -n " + o_.ns));
        continue;
      }
      std::string value;
      if (!sec->file.empty()) {
        std::ifstream in(sec->file, std::ios::binary);
        if (!in) {
          result_.errors.push_back(
              fmt::format("secrets.{}: cannot read {} (or export with --no-secret-values)", name,
                          sec->file.string()));
          continue;
        }
        std::ostringstream text;
        text << in.rdbuf();
        value = text.str();
      } else {
        const char* v = std::getenv(sec->from_env.c_str());
        if (v == nullptr) {
          result_.errors.push_back(
              fmt::format("secrets.{}: ${} is not set (or export with --no-secret-values)", name,
                          sec->from_env));
          continue;
        }
        value = v;
      }
      auto& d = add("v1", "Secret", object, kubernetes_name(m_.name));
      auto& o = d.object.as_object();
      o["type"] = "Opaque";
      o["data"] = json::object{{name, base64(value)}};
    }
  }

  static std::string base64(std::string_view in) {
    static const char* kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
      const unsigned n = (static_cast<unsigned char>(in[i]) << 16) |
                         (static_cast<unsigned char>(in[i + 1]) << 8) |
                         static_cast<unsigned char>(in[i + 2]);
      for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(n >> k) & 63];
    }
    if (i < in.size()) {
      unsigned n = static_cast<unsigned char>(in[i]) << 16;
      if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
      out += kAlphabet[(n >> 18) & 63];
      out += kAlphabet[(n >> 12) & 63];
      out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
      out += '=';
    }
    return out;
  }

  json::object probe(const Probe& p, const ServiceSpec& s) const {
    json::object o;
    if (!p.command.empty()) {
      json::array argv;
      for (const auto& a : p.command) argv.push_back(json::value(to_kubernetes_refs(a)));
      o["exec"] = json::object{{"command", std::move(argv)}};
    } else if (!p.path.empty()) {
      o["httpGet"] = json::object{{"path", p.path}, {"port", s.tcp ? "tcp" : "http"}};
    } else if (p.grpc) {  // the kubelet's own gRPC probe (GA in 1.27); its port is a number
      json::object grpc{{"port", container_port(s)}};
      if (!p.grpc->empty()) grpc["service"] = *p.grpc;
      o["grpc"] = std::move(grpc);
    } else {
      o["tcpSocket"] = json::object{{"port", s.tcp ? "tcp" : "http"}};
    }
    o["periodSeconds"] = seconds_up(p.interval);
    o["timeoutSeconds"] = seconds_up(p.timeout);
    o["failureThreshold"] = p.threshold;
    return o;
  }

  // Every service's address, as SQUADRON_<NAME>_URL/_HOST/_PORT/_ADDR, through its Service.
  void discovery_env(json::array& env) const {
    for (const auto& other : m_.services) {
      if (other.task) continue;
      const std::string host = kubernetes_name(other.name);
      const int port = service_port(other);
      env.push_back(json::object{
          {"name", discovery_variable(other.name, "URL")},
          {"value", fmt::format("{}://{}:{}", other.tcp ? "tcp" : "http", host, port)}});
      env.push_back(
          json::object{{"name", discovery_variable(other.name, "HOST")}, {"value", host}});
      env.push_back(json::object{{"name", discovery_variable(other.name, "PORT")},
                                 {"value", std::to_string(port)}});
      env.push_back(json::object{{"name", discovery_variable(other.name, "ADDR")},
                                 {"value", fmt::format("{}:{}", host, port)}});
    }
  }

  json::object container(const ServiceSpec& s, Doc& d) {
    const std::string name = kubernetes_name(s.name);
    json::object c{{"name", name}, {"image", images_.at(s.name)}};
    json::array command;
    for (const auto& a : s.command) command.push_back(json::value(to_kubernetes_refs(a)));
    c["command"] = std::move(command);
    if (!s.command.empty() && s.command[0].find('/') != std::string::npos &&
        s.command[0].front() != '/')
      warn(&d, fmt::format("services.{}.command", s.name),
           fmt::format("{} is a path relative to the manifest's folder; in the image it is "
                       "relative to the container's working directory",
                       s.command[0]));
    c["ports"] = json::array{json::object{{"name", s.tcp ? "tcp" : "http"},
                                          {"containerPort", container_port(s)},
                                          {"protocol", "TCP"}}};
    // Squadron's own variables first (env: may refer to them as $(PORT)), then discovery, then
    // the service's env: (env_file: comes through a ConfigMap).
    json::array env;
    env.push_back(json::object{{"name", "PORT"}, {"value", std::to_string(container_port(s))}});
    env.push_back(json::object{{"name", "HOST"}, {"value", "0.0.0.0"}});
    env.push_back(json::object{{"name", "SQUADRON_SERVICE"}, {"value", s.name}});
    env.push_back(json::object{
        {"name", "SQUADRON_INSTANCE"},
        {"valueFrom", json::object{{"fieldRef", json::object{{"fieldPath", "metadata.name"}}}}}});
    discovery_env(env);
    if (!s.secrets.empty())
      env.push_back(json::object{{"name", "SQUADRON_SECRETS_DIR"}, {"value", kSecretsDir}});
    for (const auto& sec : s.secrets) {
      if (sec.env.empty()) continue;
      env.push_back(json::object{
          {"name", sec.env},
          {"valueFrom",
           json::object{{"secretKeyRef",
                         json::object{{"name", secret_object(sec.name)}, {"key", sec.name}}}}}});
    }
    for (const auto& [k, v] : s.env) {
      auto from_file = s.env_file_vars.find(k);
      if (from_file != s.env_file_vars.end() && core::escape_dollars(from_file->second) == v)
        continue;
      env.push_back(json::object{{"name", k}, {"value", to_kubernetes_refs(v)}});
    }
    c["env"] = std::move(env);
    if (!s.env_file_vars.empty())
      c["envFrom"] =
          json::array{json::object{{"configMapRef", json::object{{"name", name + "-env"}}}}};
    if (s.resources.memory_bytes || s.resources.millicores) {
      json::object amounts;
      if (s.resources.millicores) amounts["cpu"] = quantity_cpu(*s.resources.millicores);
      if (s.resources.memory_bytes) amounts["memory"] = quantity_bytes(*s.resources.memory_bytes);
      // The request is the limit, as Kubernetes defaults it (a Guaranteed pod when both set).
      c["resources"] = json::object{{"requests", amounts}, {"limits", amounts}};
    }
    if (s.resources.pids)
      warn(&d, fmt::format("services.{}.resources.pids", s.name),
           "a pod has no process limit of its own (the node's kubelet sets podPidsLimit)");
    if (!s.task) {
      if (!s.ready.none) c["readinessProbe"] = probe(s.ready, s);
      if (s.live) {
        c["livenessProbe"] = probe(*s.live, s);
        // Liveness waits for the start, as Squadron's does: up to deploy.ready_timeout.
        auto start = probe(s.ready.none ? *s.live : s.ready, s);
        const int period = start["periodSeconds"].as_int64() > 0
                               ? static_cast<int>(start["periodSeconds"].as_int64())
                               : 1;
        start["failureThreshold"] = std::max(1, seconds_up(s.deploy.ready_timeout) / period);
        c["startupProbe"] = std::move(start);
      }
      json::object lifecycle{
          {"preStop", json::object{{"sleep", json::object{{"seconds", kPreStopSeconds}}}}}};
      if (s.stop_signal != SIGTERM) lifecycle["stopSignal"] = signal_name(s.stop_signal);
      c["lifecycle"] = std::move(lifecycle);
    }
    if (!s.user.empty()) {
      const auto colon = s.user.find(':');
      const std::string u = s.user.substr(0, colon);
      const std::string g = colon == std::string::npos ? "" : s.user.substr(colon + 1);
      auto numeric = [](const std::string& t) {
        return !t.empty() && std::all_of(t.begin(), t.end(), [](char ch) {
          return std::isdigit(static_cast<unsigned char>(ch));
        });
      };
      if (numeric(u) && (g.empty() || numeric(g))) {
        json::object sc{{"runAsUser", std::stoll(u)}};
        if (!g.empty()) sc["runAsGroup"] = std::stoll(g);
        c["securityContext"] = std::move(sc);
      } else {
        warn(&d, fmt::format("services.{}.user", s.name),
             fmt::format("\"{}\" is a name on this machine; a pod runs as a uid: write user: "
                         "UID[:GID] as the image knows it, or set USER in the image",
                         s.user));
      }
    }
    return c;
  }

  std::string start_order_name() const { return kubernetes_name(m_.name) + "-start-order"; }

  // depends_on as init containers that wait (kubectl wait, with the start-order account's
  // permission to read Jobs and Deployments): a task's Job complete, a service's Deployment
  // available. Without a kubectl image, a warning: pods then start in any order.
  void start_order(const ServiceSpec& s, Doc& d, json::object& spec) {
    if (s.depends_on.empty()) return;
    auto image = o_.images.find("kubectl");
    if (image == o_.images.end()) {
      warn(&d, fmt::format("services.{}.depends_on", s.name),
           "Kubernetes starts pods in any order: give --image kubectl=IMAGE (an image with "
           "kubectl) for init containers that wait for each dependency");
      return;
    }
    json::array waits;
    for (const auto& dep : s.depends_on) {
      const auto* other = m_.find(dep.service);
      const std::string target = kubernetes_name(dep.service);
      json::array command{"kubectl", "wait"};
      if (other != nullptr && other->task) {
        command.push_back("--for=condition=complete");
        command.push_back(json::value("job/" + target));
      } else {
        // started and ready alike: the Deployment's pods ready (Available).
        command.push_back("--for=condition=available");
        command.push_back(json::value("deployment/" + target));
      }
      command.push_back("--timeout=600s");
      waits.push_back(json::object{{"name", "wait-for-" + target},
                                   {"image", image->second},
                                   {"command", std::move(command)}});
    }
    spec["serviceAccountName"] = start_order_name();
    spec["initContainers"] = std::move(waits);
  }

  // The account the waiting init containers use, allowed to read Jobs and Deployments only.
  void start_order_account() {
    const std::string name = start_order_name();
    const std::string part_of = kubernetes_name(m_.name);
    auto& sa = add("v1", "ServiceAccount", name, part_of);
    sa.comments.push_back("depends_on: the init containers that wait for dependencies run as it");
    auto& role = add("rbac.authorization.k8s.io/v1", "Role", name, part_of);
    role.object.as_object()["rules"] =
        json::array{json::object{{"apiGroups", json::array{"batch"}},
                                 {"resources", json::array{"jobs"}},
                                 {"verbs", json::array{"get", "list", "watch"}}},
                    json::object{{"apiGroups", json::array{"apps"}},
                                 {"resources", json::array{"deployments"}},
                                 {"verbs", json::array{"get", "list", "watch"}}}};
    auto& binding = add("rbac.authorization.k8s.io/v1", "RoleBinding", name, part_of);
    json::object subject{{"kind", "ServiceAccount"}, {"name", name}};
    if (!o_.ns.empty()) subject["namespace"] = o_.ns;
    binding.object.as_object()["roleRef"] =
        json::object{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}};
    binding.object.as_object()["subjects"] = json::array{std::move(subject)};
  }

  json::object pod_spec(const ServiceSpec& s, Doc& d) {
    json::object spec;
    start_order(s, d, spec);
    spec["containers"] = json::array{container(s, d)};
    if (s.stop_signal != SIGTERM) spec["os"] = json::object{{"name", "linux"}};
    if (!s.task) spec["terminationGracePeriodSeconds"] = kPreStopSeconds + seconds_up(s.stop_grace);
    if (!s.secrets.empty()) {
      json::array sources;
      for (const auto& sec : s.secrets) {
        sources.push_back(json::object{
            {"secret", json::object{{"name", secret_object(sec.name)},
                                    {"items", json::array{json::object{{"key", sec.name},
                                                                       {"path", sec.target}}}}}}});
      }
      spec["volumes"] = json::array{json::object{
          {"name", "secrets"},
          {"projected", json::object{{"sources", std::move(sources)}, {"defaultMode", 0400}}}}};
      spec["containers"].as_array()[0].as_object()["volumeMounts"] = json::array{
          json::object{{"name", "secrets"}, {"mountPath", kSecretsDir}, {"readOnly", true}}};
    }
    return spec;
  }

  void service(const ServiceSpec& s) {
    const std::string name = kubernetes_name(s.name);
    if (!s.env_file_vars.empty()) {
      auto& d = add("v1", "ConfigMap", name + "-env", name);
      json::object data;
      for (const auto& [k, v] : s.env_file_vars) data[k] = v;
      d.object.as_object()["data"] = std::move(data);
    }
    if (s.task) {
      job(s);
      return;
    }
    deployment(s);
    auto& svc = add("v1", "Service", name, name);
    json::object port{{"name", s.tcp ? "tcp" : "http"},
                      {"port", service_port(s)},
                      {"targetPort", s.tcp ? "tcp" : "http"},
                      {"protocol", "TCP"}};
    // HTTP/2 without TLS, said so to meshes and Ingress controllers (KEP-3726).
    if (s.proxy.protocol == "h2c") port["appProtocol"] = "kubernetes.io/h2c";
    svc.object.as_object()["spec"] = json::object{{"type", "ClusterIP"},
                                                  {"selector", selector(name)},
                                                  {"ports", json::array{std::move(port)}}};
    if (s.autoscale) hpa(s);
    pdb(s);
  }

  void deployment(const ServiceSpec& s) {
    const std::string name = kubernetes_name(s.name);
    auto& d = add("apps/v1", "Deployment", name, name);
    const int replicas = s.autoscale ? std::max(1, s.autoscale->min) : s.replicas;
    auto surge = s.deploy.surge_percent ? json::value(fmt::format("{}%", s.deploy.max_surge))
                                        : json::value(s.deploy.max_surge);
    auto unavailable = s.deploy.unavailable_percent
                           ? json::value(fmt::format("{}%", s.deploy.max_unavailable))
                           : json::value(s.deploy.max_unavailable);
    if (!s.deploy.surge_percent && !s.deploy.unavailable_percent && s.deploy.max_surge == 0 &&
        s.deploy.max_unavailable == 0)
      surge = 1;  // Squadron's rule for both 0, which Kubernetes refuses
    if (s.restart != RestartPolicy::kAlways)
      warn(&d, fmt::format("services.{}.restart", s.name),
           "a Deployment's pods always restart (restartPolicy: Always); kind: task maps to a Job");
    if (!(s.proxy == ProxyPolicy{}) && !o_.gateway)
      warn(&d, fmt::format("services.{}.proxy", s.name),
           "timeouts, retries, ejection, breakers and balancing are the gateway's; an Ingress "
           "carries none of them");
    auto spec = json::object{
        {"replicas", replicas},
        {"selector", json::object{{"matchLabels", selector(name)}}},
        {"strategy",
         json::object{{"type", "RollingUpdate"},
                      {"rollingUpdate",
                       json::object{{"maxSurge", surge}, {"maxUnavailable", unavailable}}}}},
        // A new pod not ready within ready_timeout fails the rollout (Squadron also rolls back;
        // Kubernetes reports ProgressDeadlineExceeded and `kubectl rollout undo` does).
        {"progressDeadlineSeconds", std::max(seconds_up(s.deploy.ready_timeout), 10)}};
    auto pod = pod_spec(s, d);
    spec["template"] = json::object{{"metadata", json::object{{"labels", labels(name)}}},
                                    {"spec", std::move(pod)}};
    d.object.as_object()["spec"] = std::move(spec);
  }

  void job(const ServiceSpec& s) {
    const std::string name = kubernetes_name(s.name);
    auto& d = add("batch/v1", "Job", name, name);
    auto pod = pod_spec(s, d);
    pod["restartPolicy"] = s.restart == RestartPolicy::kOnFailure ? "OnFailure" : "Never";
    d.comments.push_back(fmt::format(
        "services.{}: kind: task runs once; a Job's pod template cannot change once created: "
        "delete the Job before applying a changed one",
        s.name));
    d.object.as_object()["spec"] =
        json::object{{"backoffLimit", s.restart == RestartPolicy::kOnFailure ? 6 : 0},
                     {"template", json::object{{"metadata", json::object{{"labels", labels(name)}}},
                                               {"spec", std::move(pod)}}}};
  }

  void hpa(const ServiceSpec& s) {
    const auto& a = *s.autoscale;
    const std::string name = kubernetes_name(s.name);
    auto& d = add("autoscaling/v2", "HorizontalPodAutoscaler", name, name);
    if (a.min == 0)
      warn(&d, fmt::format("services.{}.autoscale.min", s.name),
           "0 has no core Kubernetes object (an HPA scales between 1 and max): exported as 1; "
           "KEDA's HTTP add-on or Knative Serving scale to zero");
    json::object metric;
    if (a.metric == ScaleMetric::kCpu) {
      json::object target;
      if (s.resources.millicores) {
        // Squadron's target is percent of one core; Kubernetes' of the request (= the limit).
        target = {
            {"type", "Utilization"},
            {"averageUtilization",
             std::max<long long>(1, std::llround(a.target * 1000.0 /
                                                 static_cast<double>(*s.resources.millicores)))}};
      } else {
        target = {
            {"type", "AverageValue"},
            {"averageValue",
             quantity_cpu(static_cast<std::uint64_t>(std::max(1.0, std::round(a.target * 10.0))))}};
      }
      metric = {{"type", "Resource"},
                {"resource", json::object{{"name", "cpu"}, {"target", std::move(target)}}}};
    } else {
      const bool rps = a.metric == ScaleMetric::kRps;
      d.comments.push_back(fmt::format(
          "services.{}.autoscale.metric: {} is a Pods metric: a metrics adapter (e.g. "
          "prometheus-adapter) must serve {} from the SDK's /metrics{}",
          s.name, rps ? "rps" : "concurrency",
          rps ? "squadron_http_requests_per_second" : "squadron_http_requests_in_flight",
          rps ? " (rate(squadron_http_requests_total[1m]))" : ""));
      metric = {
          {"type", "Pods"},
          {"pods", json::object{
                       {"metric", json::object{{"name", rps ? "squadron_http_requests_per_second"
                                                            : "squadron_http_requests_in_flight"}}},
                       {"target", json::object{{"type", "AverageValue"},
                                               {"averageValue", target_quantity(a.target)}}}}}};
    }
    d.object.as_object()["spec"] = json::object{
        {"scaleTargetRef",
         json::object{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
        {"minReplicas", std::max(1, a.min)},
        {"maxReplicas", std::max(1, a.max)},
        {"metrics", json::array{std::move(metric)}},
        {"behavior",
         json::object{{"scaleDown",
                       json::object{{"stabilizationWindowSeconds",
                                     static_cast<long long>(a.scale_down_delay.count() / 1000)}}},
                      {"scaleUp", json::object{{"stabilizationWindowSeconds", 0}}}}}};
  }

  static std::string target_quantity(double v) {
    if (std::fabs(v - std::round(v)) < 1e-9) return std::to_string(std::llround(v));
    return fmt::format("{}m", std::llround(v * 1000));
  }

  void pdb(const ServiceSpec& s) {
    const int replicas = s.autoscale ? std::max(1, s.autoscale->min) : s.replicas;
    if (replicas < 2) return;
    const std::string name = kubernetes_name(s.name);
    auto& d = add("policy/v1", "PodDisruptionBudget", name, name);
    // A budget of 0 would block every node drain: at least one pod may go.
    json::value max = s.deploy.unavailable_percent
                          ? json::value(fmt::format("{}%", std::max(1, s.deploy.max_unavailable)))
                          : json::value(std::max(1, s.deploy.max_unavailable));
    d.object.as_object()["spec"] =
        json::object{{"maxUnavailable", std::move(max)},
                     {"selector", json::object{{"matchLabels", selector(name)}}}};
  }

  std::string gateway_name() const { return kubernetes_name(m_.name) + "-gateway"; }

  static std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

  // The standalone gateway's file for the routed services, each reached through the headless
  // Service of its pods (every ready pod an endpoint, as the fleet's gateway sees instances).
  std::string gateway_file() const {
    json::object upstreams;
    for (const auto& s : m_.services) {
      if (s.routes.empty() || s.task) continue;
      json::array routes;
      for (const auto& r : s.routes) {
        json::object route{{"prefix", r.prefix}};
        if (r.strip_prefix) route["strip_prefix"] = true;
        if (!r.host.empty()) route["host"] = r.host;
        if (r.rate > 0) route["rate_limit"] = json::object{{"rate", r.rate}, {"burst", r.burst}};
        routes.push_back(std::move(route));
      }
      const auto& p = s.proxy;
      json::object affinity;  // the manifest's own shape
      if (p.affinity == "source_ip") {
        affinity["source_ip"] = true;
      } else if (!p.affinity.empty()) {
        affinity[p.affinity] = p.affinity_name;
      }
      upstreams[s.name] = json::object{
          {"endpoints", json::array{json::value(fmt::format("{}-pods:{}", kubernetes_name(s.name),
                                                            container_port(s)))}},
          {"routes", std::move(routes)},
          {"proxy", json::object{{"timeout", ms(p.timeout)},
                                 {"connect_timeout", ms(p.connect_timeout)},
                                 {"retries", p.retries},
                                 {"max_in_flight", p.max_in_flight},
                                 {"max_connections", p.max_connections},
                                 {"eject_after", p.eject_after},
                                 {"eject_time", ms(p.eject_time)},
                                 {"slow_start", ms(p.slow_start)},
                                 {"balance", p.balance}}}};
      if (!affinity.empty())
        upstreams[s.name].as_object()["proxy"].as_object()["affinity"] = std::move(affinity);
      if (!p.protocol.empty())
        upstreams[s.name].as_object()["proxy"].as_object()["protocol"] = p.protocol;
    }
    json::object file{{"listen", "0.0.0.0:8080"},
                      {"admin", "0.0.0.0:9901"},
                      {"resolve_every", "5s"},
                      {"upstreams", std::move(upstreams)}};
    return to_yaml(file);
  }

  void gateway() {
    const std::string name = gateway_name();
    for (const auto& s : m_.services) {
      if (s.routes.empty() || s.task) continue;
      const std::string svc = kubernetes_name(s.name);
      auto& d = add("v1", "Service", svc + "-pods", svc);
      d.comments.push_back(fmt::format(
          "services.{}: its pods one by one, for the gateway's balancing and ejection", s.name));
      d.object.as_object()["spec"] =
          json::object{{"clusterIP", "None"},
                       {"selector", selector(svc)},
                       {"ports", json::array{json::object{{"name", "http"},
                                                          {"port", container_port(s)},
                                                          {"targetPort", "http"},
                                                          {"protocol", "TCP"}}}}};
    }
    auto& config = add("v1", "ConfigMap", name, name);
    config.comments.push_back(
        "the gateway reloads this file when it changes: kubectl apply reconfigures it in place");
    config.object.as_object()["data"] = json::object{{"gateway.yaml", gateway_file()}};
    if (m_.gateway_tls)
      warn(&config, "gateway.tls",
           "not exported: this gateway serves plain HTTP on 8080 in the cluster; terminate TLS "
           "in front of it (an Ingress or a Gateway API listener with your certificate in a "
           "Secret)");

    auto& d = add("apps/v1", "Deployment", name, name);
    json::object container{
        {"name", "gateway"},
        {"image", o_.images.at("gateway")},
        {"command", json::array{"squadron", "gateway", "-c", "/etc/squadron/gateway.yaml"}},
        {"ports",
         json::array{
             json::object{{"name", "http"}, {"containerPort", 8080}, {"protocol", "TCP"}},
             json::object{{"name", "admin"}, {"containerPort", 9901}, {"protocol", "TCP"}}}},
        {"readinessProbe",
         json::object{{"httpGet", json::object{{"path", "/healthz"}, {"port", "admin"}}},
                      {"periodSeconds", 1},
                      {"failureThreshold", 3}}},
        {"livenessProbe",
         json::object{{"httpGet", json::object{{"path", "/healthz"}, {"port", "admin"}}},
                      {"periodSeconds", 5},
                      {"failureThreshold", 3}}},
        {"lifecycle",
         json::object{
             {"preStop", json::object{{"sleep", json::object{{"seconds", kPreStopSeconds}}}}}}},
        {"volumeMounts",
         json::array{json::object{
             {"name", "config"}, {"mountPath", "/etc/squadron"}, {"readOnly", true}}}}};
    d.object.as_object()["spec"] = json::object{
        {"replicas", 2},
        {"selector", json::object{{"matchLabels", selector(name)}}},
        {"strategy",
         json::object{{"type", "RollingUpdate"},
                      {"rollingUpdate", json::object{{"maxSurge", 1}, {"maxUnavailable", 0}}}}},
        {"template",
         json::object{
             {"metadata", json::object{{"labels", labels(name)}}},
             {"spec",
              json::object{{"containers", json::array{std::move(container)}},
                           // Requests in flight get the gateway's own 10 s after the preStop pause.
                           {"terminationGracePeriodSeconds", kPreStopSeconds + 10},
                           {"volumes", json::array{json::object{
                                           {"name", "config"},
                                           {"configMap", json::object{{"name", name}}}}}}}}}}};
    auto& svc = add("v1", "Service", name, name);
    svc.object.as_object()["spec"] = json::object{
        {"type", "ClusterIP"},
        {"selector", selector(name)},
        {"ports",
         json::array{json::object{
             {"name", "http"}, {"port", 80}, {"targetPort", "http"}, {"protocol", "TCP"}}}}};
    auto& pdb = add("policy/v1", "PodDisruptionBudget", name, name);
    pdb.object.as_object()["spec"] = json::object{
        {"maxUnavailable", 1}, {"selector", json::object{{"matchLabels", selector(name)}}}};
  }

  void ingress() {
    // Rules per host (the empty host first), paths longest first, as the gateway matches.
    std::map<std::string, std::vector<std::pair<std::string, const ServiceSpec*>>> by_host;
    Doc* first_warned = nullptr;
    std::vector<std::pair<std::string, std::string>> warnings;
    for (const auto& s : m_.services) {
      for (std::size_t i = 0; i < s.routes.size(); ++i) {
        const auto& r = s.routes[i];
        by_host[r.host].emplace_back(r.prefix, &s);
        const std::string key = fmt::format("services.{}.routes[{}]", s.name, i);
        if (r.strip_prefix && !o_.gateway)
          warnings.emplace_back(key,
                                "strip_prefix: an Ingress passes the path as it is "
                                "(some controllers rewrite by annotation)");
        if (r.rate > 0 && !o_.gateway)
          warnings.emplace_back(key,
                                "rate_limit: an Ingress has no rate limit (some controllers do "
                                "by annotation)");
      }
    }
    if (by_host.empty()) return;
    auto& d =
        add("networking.k8s.io/v1", "Ingress", kubernetes_name(m_.name), kubernetes_name(m_.name));
    first_warned = &d;
    for (auto& [k, t] : warnings) warn(first_warned, k, t);
    json::array rules;
    for (auto& [host, paths] : by_host) {
      std::stable_sort(paths.begin(), paths.end(), [](const auto& a, const auto& b) {
        return a.first.size() > b.first.size();
      });
      json::array list;
      for (const auto& [prefix, s] : paths) {
        list.push_back(json::object{
            {"path", prefix},
            {"pathType", "Prefix"},
            {"backend",
             json::object{{"service", json::object{{"name", o_.gateway ? gateway_name()
                                                                       : kubernetes_name(s->name)},
                                                   {"port", json::object{{"name", "http"}}}}}}}});
      }
      json::object rule;
      if (!host.empty()) rule["host"] = host;
      rule["http"] = json::object{{"paths", std::move(list)}};
      rules.push_back(std::move(rule));
    }
    json::object spec;
    if (!o_.ingress_class.empty()) spec["ingressClassName"] = o_.ingress_class;
    spec["rules"] = std::move(rules);
    d.object.as_object()["spec"] = std::move(spec);
  }

  const Manifest& m_;
  const ExportOptions& o_;
  ExportResult result_;
  std::map<std::string, std::string> images_;
  std::vector<Doc> docs_;
};

}  // namespace

std::string to_yaml(const json::value& v) {
  std::string out;
  emit(out, v, 0);
  return out;
}

std::string kubernetes_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += static_cast<char>(std::tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 63) out.resize(63);
  return out.empty() ? "squadron" : out;
}

ExportResult export_kubernetes(const Manifest& m, const ExportOptions& options) {
  return Exporter(m, options).run();
}

}  // namespace squadron::control
