// `squadron export kubernetes` as a user runs it: a service without an image is an error naming
// it (exit 2, nothing written), warnings name the keys that cannot map, a file holding a
// Secret's value is private (0600) and one without is not, --no-secret-values says how to make
// the Secret instead.
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

#include "fixture.hpp"

namespace squadron::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string source(const std::string& path) {
  return std::string(SQUADRON_SOURCE_DIR) + "/" + path;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
}

class Export : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/squadron-export-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(Export, AServiceWithoutAnImageIsAnErrorNamingItAndNothingIsWritten) {
  ChildProcess p({bin_dir() + "/squadron", "export", "kubernetes", "-f",
                  source("examples/streamflix/squadron.yaml"), "--image",
                  "web=registry.example/web:1", "-o", (dir_ / "out.yaml").string()});
  EXPECT_EQ(p.wait_exit(10s), 2) << p.output();
  EXPECT_NE(p.output().find("services.catalog: no image to run it from"), std::string::npos)
      << p.output();
  EXPECT_NE(p.output().find("--image catalog=IMAGE"), std::string::npos) << p.output();
  EXPECT_EQ(p.output().find("services.web: no image"), std::string::npos) << p.output();
  EXPECT_FALSE(fs::exists(dir_ / "out.yaml"));
}

TEST_F(Export, WarningsNameTheKeysAndASecretsValueMakesTheFilePrivate) {
  std::vector<std::string> argv{bin_dir() + "/squadron",
                                "export",
                                "kubernetes",
                                "-f",
                                source("tests/kubernetes/every-key.yaml"),
                                "-o",
                                (dir_ / "app.yaml").string()};
  for (const char* s : {"web", "api", "worker", "lazy", "cache", "migrate"}) {
    argv.push_back("--image");
    argv.push_back(std::string(s) + "=registry.example/" + s + ":1");
  }
  {
    ChildProcess p(argv);
    EXPECT_EQ(p.wait_exit(10s), 0) << p.output();
    for (const char* key :
         {"services.web.resources.pids", "services.lazy.autoscale.min", "services.migrate.user",
          "services.web.routes[1]: strip_prefix", "services.web.proxy"})
      EXPECT_NE(p.output().find(std::string("warning: ") + key), std::string::npos) << key << "\n"
                                                                                    << p.output();
  }
  const auto text = slurp(dir_ / "app.yaml");
  EXPECT_NE(text.find("kind: Secret\n"), std::string::npos);
  EXPECT_NE(text.find("czNjcmV0Cg=="), std::string::npos) << "the file's value, base64";
  EXPECT_EQ(mode_of(dir_ / "app.yaml"), 0600U);

  argv.push_back("--no-secret-values");
  ChildProcess p(argv);
  EXPECT_EQ(p.wait_exit(10s), 0) << p.output();
  EXPECT_NE(p.output().find("kubectl create secret generic every-key-db-password"),
            std::string::npos)
      << p.output();
  const auto referenced = slurp(dir_ / "app.yaml");
  EXPECT_EQ(referenced.find("kind: Secret\n"), std::string::npos);
  EXPECT_EQ(referenced.find("czNjcmV0"), std::string::npos);
  EXPECT_NE(referenced.find("secretKeyRef"), std::string::npos) << referenced;
  EXPECT_EQ(mode_of(dir_ / "app.yaml"), 0644U);
}

}  // namespace
}  // namespace squadron::testing
