#include "common/distributed/two_rank_test_main.h"

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "common/distributed/launcher.h"
#include "common/distributed/rank_env.h"

namespace dlspeed {
namespace {

std::unique_ptr<ProcessGroup>& Group() {
  static std::unique_ptr<ProcessGroup> group;
  return group;
}

}  // namespace

ProcessGroup* TestProcessGroup() { return Group().get(); }

}  // namespace dlspeed

int main(int argc, char** argv) {
  const std::vector<char*> original_argv(argv, argv + argc);
  ::testing::InitGoogleTest(&argc, argv);
  absl::StatusOr<std::optional<dlspeed::RankEnv>> env = dlspeed::RankEnvFromEnvironment(std::getenv);
  if (!env.ok()) {
    std::cerr << env.status().message() << "\n";
    return 2;
  }
  if (!env->has_value()) {
    dlspeed::LaunchOptions options;
    options.nproc = dlspeed::kTestRanks;
    options.shutdown_timeout = std::chrono::seconds(10);
    return dlspeed::LaunchLocalWorkers(static_cast<int>(original_argv.size()),
                                       const_cast<char**>(original_argv.data()), options);
  }
  if ((*env)->rank != 0) {
    // One XML report and one premature-exit file per test run: rank 0's.
    ::testing::GTEST_FLAG(output) = "";
    unsetenv("TEST_PREMATURE_EXIT_FILE");
  }
  dlspeed::ProcessGroupOptions options;
  options.timeout = std::chrono::seconds(60);
  absl::StatusOr<std::unique_ptr<dlspeed::ProcessGroup>> created = dlspeed::ProcessGroup::Create(**env, options);
  if (!created.ok()) {
    std::cerr << created.status().message() << "\n";
    return 1;
  }
  dlspeed::Group() = std::move(*created);
  return RUN_ALL_TESTS();
}
