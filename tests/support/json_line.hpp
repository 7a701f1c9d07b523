// The JSON object a test client ends its output with (the last line that opens an object): the
// Python and Node clients of the tests print one such line.
#pragma once

#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace squadron::testing {

// That object, or an empty one when there is none or it does not parse.
inline boost::json::object last_json_line(const std::string& output) {
  const auto line = output.rfind("\n{");
  const auto start = line != std::string::npos ? line + 1 : output.find('{');
  if (start == std::string::npos) return {};
  boost::system::error_code ec;
  const auto v = boost::json::parse(output.substr(start), ec);
  return ec || !v.is_object() ? boost::json::object() : v.as_object();
}

}  // namespace squadron::testing
