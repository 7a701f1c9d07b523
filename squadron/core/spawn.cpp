#include "squadron/core/spawn.hpp"

#include <cstdio>
#include <stdexcept>

namespace squadron::core {

void report_task_failure(std::string_view what, const std::exception_ptr& e) noexcept {
  const char* message = "an unknown exception";
  std::string text;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    text = ex.what();
    message = text.c_str();
  } catch (...) {
  }
  std::fprintf(stderr, "squadron: %.*s ended by exception: %s\n", static_cast<int>(what.size()),
               what.data(), message);
}

}  // namespace squadron::core
