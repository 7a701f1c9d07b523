#include "squadron/control/fleet.hpp"

#include <gtest/gtest.h>

namespace squadron::control {
namespace {

namespace sv = squadron::supervisor;

sv::InstanceStatus inst(std::string id, sv::InstanceState s = sv::InstanceState::kReady) {
  sv::InstanceStatus st;
  st.service = "hello";
  st.id = std::move(id);
  st.state = s;
  return st;
}

TEST(ChooseSurplus, TheNewestReadyInstancesGoFirstByNumberNotByText) {
  const auto out = choose_surplus({inst("hello-2"), inst("hello-10"), inst("hello-9")}, 2);
  EXPECT_EQ(out, (std::vector<std::string>{"hello-10", "hello-9"}));
}

TEST(ChooseSurplus, UnreadyInstancesGoBeforeReadyOnes) {
  const auto out = choose_surplus({inst("hello-1", sv::InstanceState::kBackoff), inst("hello-5"),
                                   inst("hello-3", sv::InstanceState::kStarting)},
                                  2);
  EXPECT_EQ(out, (std::vector<std::string>{"hello-3", "hello-1"}));
}

TEST(ChooseSurplus, NeverMoreThanThereAre) {
  EXPECT_EQ(choose_surplus({inst("hello-1")}, 5).size(), 1u);
  EXPECT_TRUE(choose_surplus({}, 1).empty());
}

TEST(ToRegistry, CarriesEveryFieldAndTheSameStateName) {
  auto st = inst("hello-4", sv::InstanceState::kBackoff);
  st.pid = 77;
  st.port = 8123;
  st.restarts = 3;
  st.revision = "2";
  st.last_exit = "exit 3";
  const auto r = to_registry(st);
  EXPECT_EQ(r.id, "hello-4");
  EXPECT_EQ(r.pid, 77);
  EXPECT_EQ(r.port, 8123);
  EXPECT_EQ(r.restarts, 3);
  EXPECT_EQ(r.revision, "2");
  EXPECT_EQ(r.last_exit, "exit 3");
  for (auto s :
       {sv::InstanceState::kStarting, sv::InstanceState::kReady, sv::InstanceState::kDraining,
        sv::InstanceState::kStopping, sv::InstanceState::kBackoff, sv::InstanceState::kFailed,
        sv::InstanceState::kStopped}) {
    st.state = s;
    EXPECT_EQ(registry::to_string(to_registry(st).state), sv::to_string(s));
  }
}

}  // namespace
}  // namespace squadron::control
