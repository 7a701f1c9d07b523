// The CLI's side of the control API: finds the running fleet of a manifest through
// `.squadron/run.json` and `.squadron/token`, and makes blocking HTTP calls to it.
//
//   std::string why;
//   auto client = ControlClient::for_manifest(manifest, why);
//   if (!client) fail(why);                         // "no fleet is running for ..."
//   auto r = client->get("/api/v1/instances");      // r.status, r.body, r.error
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "squadron/control/manifest.hpp"

namespace squadron::apps {

struct HttpResult {
  int status = 0;  // 0 when the call failed before an answer
  std::string body;
  std::string error;  // why there is no answer ("connection refused")
  bool ok() const { return status >= 200 && status < 300; }
  // The problem document's detail, or the body, or the error: what to tell the user.
  std::string explain() const;
};

class ControlClient {
 public:
  ControlClient(std::string host, std::uint16_t port, std::string token, int pid = 0)
      : host_(std::move(host)), port_(port), token_(std::move(token)), pid_(pid) {}

  // The client of the fleet running from `m`'s folder; nullopt and `why` when none runs.
  static std::optional<ControlClient> for_manifest(const control::Manifest& m, std::string& why);

  HttpResult get(std::string_view target,
                 std::chrono::milliseconds timeout = std::chrono::seconds(40)) const;
  HttpResult post(std::string_view target, std::string body = "{}",
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // A GET whose body is handed to `on_data` as it arrives (a followed log), until it ends.
  HttpResult stream(std::string_view target,
                    const std::function<void(std::string_view)>& on_data) const;

  int pid() const noexcept { return pid_; }
  std::string url() const { return "http://" + host_ + ":" + std::to_string(port_); }

 private:
  HttpResult call(std::string_view method, std::string_view target, std::string body,
                  std::chrono::milliseconds timeout,
                  const std::function<void(std::string_view)>* on_data) const;

  std::string host_;
  std::uint16_t port_;
  std::string token_;
  int pid_;
};

}  // namespace squadron::apps
