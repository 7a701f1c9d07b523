// One object of type T per io_context, made on first use and destroyed with the context's
// services (before its reactor goes): the connection pools of the client (ConnectionPool::of,
// H2Pool::of), whose sockets must close while the context can still take them.
#pragma once

#include <memory>
#include <utility>

#include <boost/asio/execution_context.hpp>

namespace squadron::http::internal {

template <class T>
class PerContext final : public boost::asio::execution_context::service {
 public:
  using key_type = PerContext<T>;
  static inline boost::asio::execution_context::id id;
  explicit PerContext(boost::asio::execution_context& ctx)
      : boost::asio::execution_context::service(ctx) {}
  void shutdown() override { object_.reset(); }

  // The context's T, made with `args` the first time.
  template <class... Args>
  static T& of(boost::asio::execution_context& ctx, Args&&... args) {
    auto& self = boost::asio::use_service<PerContext<T>>(ctx);
    if (!self.object_) self.object_ = std::make_unique<T>(std::forward<Args>(args)...);
    return *self.object_;
  }

 private:
  std::unique_ptr<T> object_;
};

}  // namespace squadron::http::internal
