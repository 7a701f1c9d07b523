// Starts a real example binary on port 0 for each test and stops it afterwards.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "process.hpp"
#include "raw_client.hpp"

namespace squadron::testing {

inline std::unique_ptr<ChildProcess> start_service(const std::string& name,
                                                   std::vector<std::string> args = {},
                                                   std::vector<std::string> env = {}) {
  std::vector<std::string> argv{bin_dir() + "/" + name, "--port", "0", "--threads", "1"};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<ChildProcess>(std::move(argv), std::move(env));
}

// Asks `done` every `pace` until it says yes or `timeout` passes; returns its last answer. For
// waiting on what another process does (polling, not synchronisation within the test).
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds pace = std::chrono::milliseconds(10)) {
  for (const auto until = std::chrono::steady_clock::now() + timeout;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(pace);
  }
}

class ServiceTest : public ::testing::Test {
 protected:
  void start(const std::string& name, std::vector<std::string> args = {},
             std::vector<std::string> env = {}) {
    proc_ = start_service(name, std::move(args), std::move(env));
    auto port = proc_->wait_for_port();
    ASSERT_TRUE(port) << "did not start: " << proc_->output();
    port_ = *port;
  }
  void TearDown() override {
    if (proc_ && proc_->running()) {
      proc_->signal(SIGTERM);
      auto code = proc_->wait_exit(std::chrono::seconds(15));
      EXPECT_EQ(code, 0) << proc_->output();
    }
  }
  std::unique_ptr<ChildProcess> proc_;
  std::uint16_t port_ = 0;
};

}  // namespace squadron::testing
