// `squadron validate -f FILE`: a good manifest passes; each broken one exits 2 with a precise
// file:line:column error and starts nothing.
#include <filesystem>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

using namespace std::chrono_literals;

std::string manifests_dir() { return SQUADRON_TEST_MANIFESTS; }

TEST(Validate, AcceptsTheGoodManifest) {
  ChildProcess p({bin_dir() + "/squadron", "validate", "-f", manifests_dir() + "/good.yaml"});
  EXPECT_EQ(p.wait_exit(10s), 0) << p.output();
  EXPECT_NE(
      p.output().find(
          "ok: fleet \"shop\", 4 services (hello x2, echo x1, flask x1, cache x1), 5 instances"),
      std::string::npos)
      << p.output();
}

TEST(Validate, EveryBrokenManifestExits2WithItsPlace) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(manifests_dir() + "/broken")) {
    const std::string file = entry.path().string();
    ChildProcess p({bin_dir() + "/squadron", "validate", "-f", file});
    EXPECT_EQ(p.wait_exit(10s), 2) << file << "\n" << p.output();
    // "<file>:<line>:<column>: " then the message
    EXPECT_NE(p.output().find(file + ":"), std::string::npos) << p.output();
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(p.output()[file.size() + 1])))
        << p.output();
    EXPECT_NE(p.output().find("nothing was started"), std::string::npos) << p.output();
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Validate, AMissingManifestSaysWhatToDo) {
  ChildProcess p({bin_dir() + "/squadron", "validate", "-f", "/no/such/squadron.yaml"});
  EXPECT_EQ(p.wait_exit(10s), 2);
  EXPECT_NE(p.output().find("pass -f path/to/squadron.yaml"), std::string::npos) << p.output();
}

}  // namespace
}  // namespace squadron::testing
