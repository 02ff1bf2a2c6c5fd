#include "common/testing/scratch_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace dlspeed {
namespace {
namespace fs = std::filesystem;

TEST(ScratchDirTest, FreshDirectoryUnderTheRootIsRemovedWithIt) {
  const std::string dir = ScratchDir("a");
  EXPECT_EQ(fs::path(dir).parent_path(), fs::path(ScratchRoot()));
  std::ofstream(dir + "/file") << "data";
  ASSERT_TRUE(fs::exists(dir + "/file"));

  EXPECT_EQ(ScratchDir("a"), dir);
  EXPECT_FALSE(fs::exists(dir + "/file")) << "asking again empties it";

  std::ofstream(dir + "/file") << "data";
  RemoveScratchRoot();
  EXPECT_FALSE(fs::exists(ScratchRoot()));
}

TEST(ScratchDirTest, RemovesNestedDirectoriesButNotWhatALinkPointsTo) {
  const std::string outside = ScratchPath("outside.txt");
  std::ofstream(outside) << "kept";
  const std::string dir = ScratchDir("tree");
  fs::create_directories(dir + "/a/b/c");
  std::ofstream(dir + "/a/b/c/deep") << "data";
  std::ofstream(dir + "/a/top") << "data";
  fs::create_symlink(outside, dir + "/a/link");
  fs::create_directory_symlink(ScratchRoot(), dir + "/a/b/root_link");

  EXPECT_EQ(ScratchDir("tree"), dir);
  EXPECT_TRUE(fs::is_empty(dir)) << "asking again removes every level";
  EXPECT_TRUE(fs::exists(outside)) << "links are removed, not followed";
  RemoveScratchRoot();
  EXPECT_FALSE(fs::exists(ScratchRoot()));
}

TEST(ScratchDirTest, PathLeavesOtherFilesAlone) {
  const std::string first = ScratchPath("first.bin");
  std::ofstream(first) << "data";
  const std::string second = ScratchPath("second.bin");
  EXPECT_EQ(fs::path(second).parent_path(), fs::path(ScratchRoot()));
  EXPECT_TRUE(fs::exists(first));
  RemoveScratchRoot();
}

TEST(ScratchDirTest, KeepsTheFilesWhenAsked) {
  const std::string dir = ScratchDir("kept");
  setenv("DLSPEED_KEEP_TEST_FILES", "1", 1);
  RemoveScratchRoot();
  unsetenv("DLSPEED_KEEP_TEST_FILES");
  EXPECT_TRUE(fs::exists(dir));
  RemoveScratchRoot();
  EXPECT_FALSE(fs::exists(dir));
}

TEST(ScratchDirTest, RootIsPerTestOrPerProcess) {
  const char* bazel_tmp = std::getenv("TEST_TMPDIR");
  if (bazel_tmp != nullptr) {
    EXPECT_EQ(ScratchRoot(), std::string(bazel_tmp) + "/scratch");
  } else {
    EXPECT_NE(ScratchRoot().find(std::to_string(getpid())), std::string::npos);
  }
}

}  // namespace
}  // namespace dlspeed
