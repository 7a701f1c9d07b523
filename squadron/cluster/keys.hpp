// Where a fleet keeps its state in etcd: one prefix per fleet, a folder per kind, a host's own
// keys under a folder of the host so that a watch or a read takes exactly one host's.
//
//   /squadron/<fleet>/hosts/<host>                  HostInfo, under the host's lease
//   /squadron/<fleet>/assignments/<host>/<id>       the InstanceSpec the leader placed there
//   /squadron/<fleet>/instances/<host>/<id>         the instance as its agent reports it, under
//                                                   the host's lease (gone with the host)
//   /squadron/<fleet>/leader                        the leading server, under its lease
//
//   Keys k{"streamflix"};
//   etcd.put(k.instance("h1", "web-3"), json, lease);
//
// Thread safety: plain values.
#pragma once

#include <string>
#include <string_view>

namespace squadron::cluster {

class Keys final {
 public:
  explicit Keys(std::string_view fleet) : root_("/squadron/" + std::string(fleet) + "/") {}

  const std::string& root() const { return root_; }
  std::string hosts() const { return root_ + "hosts/"; }
  std::string host(std::string_view name) const { return hosts() + std::string(name); }
  std::string assignments() const { return root_ + "assignments/"; }
  std::string assignments_of(std::string_view host) const {
    return assignments() + std::string(host) + "/";
  }
  std::string assignment(std::string_view host, std::string_view id) const {
    return assignments_of(host) + std::string(id);
  }
  std::string instances() const { return root_ + "instances/"; }
  std::string instances_of(std::string_view host) const {
    return instances() + std::string(host) + "/";
  }
  std::string instance(std::string_view host, std::string_view id) const {
    return instances_of(host) + std::string(id);
  }
  std::string leader() const { return root_ + "leader"; }

  // The last part of a key ("web-3" of ".../instances/h1/web-3").
  static std::string_view leaf(std::string_view key) {
    const auto slash = key.rfind('/');
    return slash == std::string_view::npos ? key : key.substr(slash + 1);
  }

 private:
  std::string root_;
};

// Whether `name` can name a host or a fleet in a key: 1-63 of [a-z0-9-], not starting or ending
// with '-' (a DNS label, as Kubernetes names nodes).
bool valid_name(std::string_view name) noexcept;

}  // namespace squadron::cluster
