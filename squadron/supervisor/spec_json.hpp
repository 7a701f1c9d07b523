// An InstanceSpec as JSON: what a cluster's leader writes for the agent of the host an instance
// is placed on (etcd's assignments), and reads back there. Every field, durations in
// milliseconds; a secret travels as its source (a file path or a variable name on the agent's
// host), never its value. Descriptors to inherit do not travel (they are a process's own).
//
//   boost::json::object o = to_json(spec);
//   std::string error;
//   auto back = spec_from_json(o, error);   // nullopt: `error` names the key that is wrong
//
// Thread safety: plain functions.
#pragma once

#include <optional>
#include <string>

#include <boost/json/fwd.hpp>

#include "squadron/supervisor/supervisor.hpp"

namespace squadron::supervisor {

boost::json::object to_json(const InstanceSpec& spec);
std::optional<InstanceSpec> spec_from_json(const boost::json::value& v, std::string& error);

}  // namespace squadron::supervisor
