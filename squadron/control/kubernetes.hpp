// `squadron export kubernetes`: a manifest as the objects a Kubernetes cluster runs — per
// service a Deployment (or a Job for a task), a Service, an HPA for autoscale, a
// PodDisruptionBudget, a ConfigMap for env_file; a Secret per secret; one Ingress for the routes;
// with `gateway`, Squadron's gateway as a Deployment between the Ingress and the services.
// One multi-document YAML, deterministic (the same manifest gives the same bytes), every object
// labelled app.kubernetes.io/name, /part-of (the fleet) and /managed-by: squadron. What cannot
// map is a warning naming the key (and a comment on the object it concerns). The mapping, key by
// key: docs/kubernetes.md.
//
//   ExportOptions o;
//   o.images = {{"web", "registry.example/web:1.4"}};
//   auto r = export_kubernetes(manifest, o);
//   if (!r.errors.empty()) ...;      // a service without an image, names that collide
//   write(r.yaml); for (auto& w : r.warnings) warn(w);
//
// Thread safety: a pure function of its arguments (secret values are read from their files or
// the environment when asked for).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "squadron/control/manifest.hpp"

namespace squadron::control {

struct ExportOptions {
  std::string ns;                             // metadata.namespace of every object; empty: none
  std::map<std::string, std::string> images;  // --image SERVICE=IMAGE, over the manifest's image:
  bool secret_values = true;                  // false: Secrets are referenced, not emitted
  std::string ingress_class;                  // spec.ingressClassName; empty: the cluster's default
  // --gateway: Squadron's gateway in the cluster (its image is images["gateway"]), in front of
  // every routed service through a headless Service of its pods, configured by a ConfigMap
  // holding a standalone gateway file; the Ingress then sends everything to it.
  bool gateway = false;
};

struct ExportResult {
  std::string yaml;
  std::vector<std::string> warnings;  // "services.web.resources.pids: ..." each
  std::vector<std::string> errors;    // nothing can be exported: a service without an image
};

ExportResult export_kubernetes(const Manifest& m, const ExportOptions& options);

// A JSON value as block-style YAML (maps and lists indented by two, strings quoted whenever a
// YAML reader could take them for anything but a string), ending in a newline. Deterministic.
std::string to_yaml(const boost::json::value& v);

// A Kubernetes name (DNS-1123 label) for a Squadron name: lower case, '_' as '-'.
std::string kubernetes_name(std::string_view name);

}  // namespace squadron::control
