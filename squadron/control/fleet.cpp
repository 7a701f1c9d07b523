#include "squadron/control/fleet.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "squadron/core/duration.hpp"

namespace squadron::control {

namespace sv = squadron::supervisor;
namespace json = boost::json;

namespace {

sv::InstanceSpec to_instance_spec(const ServiceSpec& s) {
  sv::InstanceSpec spec;
  spec.service = s.name;
  spec.launch.argv = s.command;
  spec.launch.cwd = s.cwd;
  spec.launch.env = s.env;
  spec.launch.inherit_fds = s.inherit_fds;
  spec.port = s.port;
  auto probe = [](const Probe& p) {
    sv::ProbeSpec out;
    out.path = p.path;
    out.command = p.command;
    out.grpc = p.grpc;
    out.none = p.none;
    out.interval = p.interval;
    out.timeout = p.timeout;
    out.threshold = p.threshold;
    out.port = p.port;
    return out;
  };
  spec.ready = probe(s.ready);
  if (s.live) spec.live = probe(*s.live);
  spec.launch.run_as = s.run_as;
  spec.stop_signal = s.stop_signal;
  spec.secrets = s.secrets;
  spec.expand_variables = true;  // the manifest's ${PORT} and $$
  spec.stop_grace = s.stop_grace;
  spec.resources = s.resources;
  spec.restart = s.restart == RestartPolicy::kAlways      ? sv::Restart::kAlways
                 : s.restart == RestartPolicy::kOnFailure ? sv::Restart::kOnFailure
                                                          : sv::Restart::kNever;
  return spec;
}

}  // namespace

Fleet::Fleet(boost::asio::io_context& io, sv::Runner& runner, registry::Registry& reg,
             const core::Clock& clock, Manifest manifest, FleetOptions options,
             FleetCollaborators with)
    : io_(io),
      sup_(runner),
      reg_(reg),
      clock_(clock),
      manifest_(std::move(manifest)),
      options_(std::move(options)),
      with_(with),
      output_(io),
      resync_timer_(io) {
  for (const auto& s : manifest_.services) {
    auto& state = services_[s.name];
    // An autoscaled service starts within its bounds; the autoscaler takes it from there.
    state.desired =
        s.autoscale ? std::clamp(s.replicas, s.autoscale->min, s.autoscale->max) : s.replicas;
    state.revisions.push_back(
        {1, definition_hash(s), s, std::chrono::system_clock::now(), "the manifest", false});
    state.base = state.revisions.back().hash;
  }
  sup_.set_observer(this);
}

Fleet::~Fleet() {
  *alive_ = false;
  sup_.set_observer(nullptr);
  output_.close_all();
}

void Fleet::add_service(ServiceSpec spec) {
  builtin_.insert(spec.name);
  auto& state = services_[spec.name];
  state.desired = spec.replicas;
  state.revisions.push_back(
      {1, definition_hash(spec), spec, std::chrono::system_clock::now(), "squadron", false});
  manifest_.services.push_back(std::move(spec));
}

void Fleet::start() {
  if (with_.store != nullptr) {
    std::string warning;
    const auto saved = with_.store->load_scale(warning);
    if (!warning.empty()) event("", "", "state: " + warning);
    for (const auto& spec : manifest_.services) {
      auto it = saved.find(spec.name);
      if (it == saved.end() || spec.autoscale) continue;  // the autoscaler decides those
      if (it->second.manifest_replicas != spec.replicas) {
        event(spec.name, "",
              fmt::format("replicas {} from the manifest (it changed since `scale` set {})",
                          spec.replicas, it->second.replicas));
        continue;
      }
      if (it->second.replicas != spec.replicas) {
        services_[spec.name].desired = it->second.replicas;
        event(spec.name, "",
              fmt::format("replicas {} as last scaled (the manifest says {})", it->second.replicas,
                          spec.replicas));
      }
    }
  }
  restore_revisions();
  reconcile();
  schedule_resync();
}

void Fleet::restore_revisions() {
  if (with_.store == nullptr) return;
  std::vector<ServiceSpec> mine;
  for (const auto& spec : manifest_.services) {
    if (builtin_.count(spec.name) == 0) mine.push_back(spec);
  }
  std::string warning;
  auto loaded = with_.store->load_revisions(mine, warning);
  if (!warning.empty()) event("", "", "state: " + warning);
  if (!loaded) return;  // the first start: the manifest is revision 1
  auto& saved = *loaded;
  for (auto& spec : manifest_.services) {
    auto it = saved.find(spec.name);
    if (it == saved.end()) continue;
    ServiceHistory& h = it->second;
    auto& state = services_[spec.name];
    const std::string manifest_hash = state.revisions[state.current].hash;
    if (h.base != manifest_hash) {
      // Edited in the manifest since: the file wins, as a new revision after the saved ones.
      h.revisions.push_back({h.revisions.back().number + 1, manifest_hash, spec,
                             std::chrono::system_clock::now(), "the manifest (edited)", false});
      h.current = h.revisions.size() - 1;
      event(spec.name, "",
            fmt::format("revision {}: the manifest changed since the fleet last ran",
                        h.revisions.back().number));
    } else if (h.revisions.size() > 1) {
      event(spec.name, "",
            fmt::format("revision {} as it last ran ({} in the history)",
                        h.revisions[h.current].number, h.revisions.size()));
    }
    state.revisions = std::move(h.revisions);
    state.current = h.current;
    state.base = manifest_hash;
    spec = state.revisions[state.current].spec;
  }
  persist_revisions();
}

void Fleet::persist_revisions() {
  if (with_.store == nullptr) return;
  Histories all;
  for (const auto& spec : manifest_.services) {
    auto it = services_.find(spec.name);
    // Squadron's own services are made anew at each start; a service an apply is adding has
    // no revision yet (the apply saves again once it has).
    if (builtin_.count(spec.name) != 0 || it == services_.end() || it->second.revisions.empty())
      continue;
    all[spec.name] = {it->second.revisions, it->second.current, it->second.base};
  }
  if (auto ec = with_.store->save_revisions(all))
    event("", "", "cannot save the revisions in " + with_.store->where() + ": " + ec.message());
}

int Fleet::desired(std::string_view service) const {
  auto it = services_.find(service);
  return it == services_.end() ? 0 : it->second.desired;
}

bool Fleet::rolling(std::string_view service) const {
  auto it = services_.find(service);
  return it != services_.end() && it->second.rollout.has_value();
}

int Fleet::total_desired() const {
  int n = 0;
  for (const auto& [name, s] : services_) n += s.desired;
  return n;
}

std::optional<CommandError> Fleet::scale(std::string_view service, int replicas) {
  const auto* spec = manifest_.find(service);
  if (spec == nullptr) {
    std::string names;
    for (const auto& s : manifest_.services) names += (names.empty() ? "" : ", ") + s.name;
    return CommandError{404, fmt::format("no service \"{}\" in fleet \"{}\" (services: {})",
                                         service, manifest_.name, names)};
  }
  if (stopping_) return CommandError{409, "the fleet is stopping"};
  if (builtin_.count(spec->name) != 0)
    return CommandError{409, fmt::format("{} is Squadron's own and runs once per fleet; it is "
                                         "not scaled",
                                         spec->name)};
  if (replicas < 0 || replicas > options_.max_replicas)
    return CommandError{400, fmt::format("replicas must be 0..{}", options_.max_replicas)};
  if (spec->port && replicas > 1)
    return CommandError{409, fmt::format("{} listens on the fixed port {}: it can run one replica "
                                         "at most (use port: auto to scale it)",
                                         spec->name, *spec->port)};
  auto& state = services_[spec->name];
  // During a deploy the new count applies once the rollout is done (to the new revision).
  if (state.rollout && state.rollout->to_revision == 0)
    return CommandError{409, fmt::format("{} is being restarted; scale it once the restart is "
                                         "done",
                                         spec->name)};
  if (state.desired != replicas) {
    event(spec->name, "", fmt::format("scale {} -> {}", state.desired, replicas));
    state.desired = replicas;
    persist();
  }
  kick();
  return std::nullopt;
}

void Fleet::autoscale(std::string_view service, int replicas, const std::string& reason) {
  const auto* spec = manifest_.find(service);
  if (spec == nullptr || stopping_ || replicas < 0 || replicas > options_.max_replicas) return;
  auto& state = services_[spec->name];
  if (state.rollout || state.desired == replicas) return;
  event(spec->name, "", reason);
  state.desired = replicas;
  kick();
}

void Fleet::note(std::string_view service, const std::string& message) {
  event(std::string(service), "", message);
}

void Fleet::down(std::function<void()> done) {
  if (!stopping_) event("", "", fmt::format("down: stopping {} instances", sup_.snapshot().size()));
  stopping_ = true;
  resync_timer_.cancel();
  for (auto& [name, s] : services_) s.rollout.reset();
  sup_.stop_all([this, done = std::move(done)] {
    output_.close_all();  // no more output will come: followed logs end (last lines queued)
    if (done) done();
  });
}

void Fleet::detach() {
  stopping_ = true;
  resync_timer_.cancel();
  for (auto& [name, s] : services_) s.rollout.reset();
  output_.close_all();
}

void Fleet::persist() {
  if (with_.store == nullptr) return;
  DesiredScale d;
  for (const auto& spec : manifest_.services) {
    const int want = desired(spec.name);
    if (want != spec.replicas) d[spec.name] = {want, spec.replicas};
  }
  if (auto ec = with_.store->save_scale(d))
    event("", "", "cannot save the scale in " + with_.store->where() + ": " + ec.message());
}

std::string Fleet::add(const ServiceSpec& spec) {
  auto instance = to_instance_spec(spec);
  if (auto it = services_.find(spec.name);
      it != services_.end() && it->second.current < it->second.revisions.size())
    instance.revision = std::to_string(it->second.revisions[it->second.current].number);
  return sup_.add(std::move(instance));
}

void Fleet::on_output(const sv::InstanceStatus& st, std::string_view line) {
  if (with_.observer != nullptr) with_.observer->on_output(st, line);
  output_.publish(st, line);
}

std::shared_ptr<OutputSubscription> Fleet::subscribe(std::string filter) {
  return output_.subscribe(std::move(filter), stopping_ && sup_.snapshot().empty());
}

std::vector<std::string> Fleet::logs(const std::string& id, std::size_t lines) const {
  return sup_.logs(id, lines);
}

void Fleet::event(const std::string& service, const std::string& instance, std::string message) {
  const auto& e = reg_.record(service, instance, std::move(message));
  if (with_.observer != nullptr) with_.observer->on_event(e);
}

json::object Fleet::service_json(const ServiceSpec& spec) const {
  int ready = 0;
  int instances = 0;
  for (const auto& i : reg_.instances()) {
    if (i.service != spec.name) continue;
    ++instances;
    ready += i.state == registry::State::kReady;
  }
  json::array routes;
  for (const auto& r : spec.routes) routes.push_back(json::string(r.prefix));
  json::object o;
  o["name"] = spec.name;
  o["desired"] = desired(spec.name);
  o["manifest_replicas"] = spec.replicas;
  o["ready"] = ready;
  o["instances"] = instances;
  o["port"] = spec.port ? json::value(*spec.port) : json::value("auto");
  o["routes"] = std::move(routes);
  o["restarting"] = rolling(spec.name);
  o["kind"] = spec.task ? "task" : "service";
  json::object deps;
  for (const auto& d : spec.depends_on) deps[d.service] = to_string(d.condition);
  o["depends_on"] = std::move(deps);
  if (auto it = services_.find(spec.name); it != services_.end() && !it->second.waiting.empty())
    o["waiting"] = it->second.waiting;
  o["revision"] = revision(spec.name);
  if (auto it = services_.find(spec.name);
      it != services_.end() && it->second.rollout && it->second.rollout->to_revision != 0)
    o["rolling_out"] = it->second.rollout->to_revision;
  return o;
}

}  // namespace squadron::control
