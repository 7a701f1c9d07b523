// The one way to start a detached coroutine: an exception that escapes it is reported on
// stderr with the task's name and hands control to a recovery, never vanishes. `asio::detached`
// is not used outside tests (scripts/check refuses it): a supervisor whose task died silently
// once left an instance in backoff for good.
//
//   core::spawn(io, run_instance(inst), "instance hello-1", [inst] { restart_later(inst); });
//
// Thread safety: as boost::asio::co_spawn; `recover` runs on the task's executor.
#pragma once

#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

namespace squadron::core {

// Writes "squadron: <what> ended by exception: <message>" to stderr. Never throws.
void report_task_failure(std::string_view what, const std::exception_ptr& e) noexcept;

template <class ExecutionContextOrExecutor>
void spawn(ExecutionContextOrExecutor&& where, boost::asio::awaitable<void> task, std::string what,
           std::function<void()> recover = {}) {
  boost::asio::co_spawn(
      std::forward<ExecutionContextOrExecutor>(where), std::move(task),
      [what = std::move(what), recover = std::move(recover)](const std::exception_ptr& e) {
        if (!e) return;
        report_task_failure(what, e);
        if (recover) {
          try {
            recover();
          } catch (...) {
            report_task_failure(what + " (its recovery)", std::current_exception());
          }
        }
      });
}

}  // namespace squadron::core
