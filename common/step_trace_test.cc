#include "common/step_trace.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

// The names of the trace's events.
std::set<std::string> EventNames(const std::string& path) {
  std::ifstream in(path);
  const nlohmann::json trace = nlohmann::json::parse(in);
  std::set<std::string> names;
  for (const nlohmann::json& event : trace.at("traceEvents")) {
    if (event.contains("name") && event["name"].is_string()) names.insert(event["name"].get<std::string>());
  }
  return names;
}

// Step i runs one operator of its own, so the trace shows which steps it covers.
const char* const kStepOps[] = {"aten::sin", "aten::cos", "aten::tan", "aten::exp", "aten::sqrt", "aten::log1p"};

void RunStep(int i, const torch::Tensor& x) {
  switch (i) {
    case 0: x.sin(); break;
    case 1: x.cos(); break;
    case 2: x.tan(); break;
    case 3: x.exp(); break;
    case 4: x.sqrt(); break;
    default: x.log1p(); break;
  }
}

TEST(StepTraceTest, CoversTheStepsAfterTheFirstOnesAndWritesThemOnce) {
  const std::string path = ScratchPath("steps.json");
  StepTrace trace(path, /*after_steps=*/2, /*steps=*/2, c10::Device(c10::kCPU));
  ASSERT_TRUE(trace.enabled());
  const torch::Tensor x = torch::rand({64});
  for (int i = 0; i < 6; ++i) {
    RunStep(i, x);
    ASSERT_TRUE(trace.AfterStep().ok()) << "step " << i;
    EXPECT_EQ(trace.running(), i == 1 || i == 2) << "step " << i;
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  const std::set<std::string> names = EventNames(path);
  EXPECT_TRUE(names.count("aten::tan") && names.count("aten::exp")) << "steps 3 and 4 are traced";
  for (const char* op : {"aten::sin", "aten::cos", "aten::sqrt", "aten::log1p"}) {
    EXPECT_EQ(names.count(op), 0u) << op << " ran outside the traced steps";
  }
  EXPECT_FALSE(trace.enabled()) << "one trace a run";
  EXPECT_TRUE(trace.Finish().ok()) << "the trace was written";
}

TEST(StepTraceTest, ARunThatEndsBeforeTheTracedStepsSaysSo) {
  const std::string path = ScratchPath("short.json");
  StepTrace trace(path, /*after_steps=*/2, /*steps=*/3, c10::Device(c10::kCPU));
  const torch::Tensor x = torch::rand({64});
  for (int i = 0; i < 4; ++i) {  // the run ends inside the traced steps 3 to 5
    RunStep(i, x);
    ASSERT_TRUE(trace.AfterStep().ok());
  }
  const absl::Status status = trace.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(status.message()).find("--trace=" + path + ": the run ended after 4 steps, before the last of "
                                               "the steps 3 to 5"),
            std::string::npos)
      << status;
  EXPECT_FALSE(trace.running());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(trace.Finish().ok()) << "said once";
}

TEST(StepTraceTest, NoPathTracesNothing) {
  StepTrace trace("", 1, 1, c10::Device(c10::kCPU));
  EXPECT_FALSE(trace.enabled());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(trace.AfterStep().ok());
    EXPECT_FALSE(trace.running());
  }
}

TEST(StepTraceTest, AFileThatCannotBeWrittenIsOneErrorNamingIt) {
  const std::string dir = ScratchDir("trace_gone");
  const std::string path = dir + "/trace.json";
  StepTrace trace(path, 1, 1, c10::Device(c10::kCPU));
  ASSERT_TRUE(trace.AfterStep().ok());
  ASSERT_TRUE(trace.running());
  std::filesystem::remove(dir);  // the folder goes away while the trace runs
  torch::rand({8}).sin();
  const absl::Status status = trace.AfterStep();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_TRUE(trace.AfterStep().ok()) << "the error is reported once";
}

TEST(StepTraceTest, FlagsAreCheckedBeforeTraining) {
  const c10::Device cpu(c10::kCPU);
  absl::SetFlag(&FLAGS_trace, ScratchPath("missing_folder") + "/trace.json");
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(cpu);
  ASSERT_FALSE(trace.ok());
  EXPECT_NE(trace.status().message().find("--trace="), std::string::npos) << trace.status();

  absl::SetFlag(&FLAGS_trace, ScratchDir("a_folder"));
  trace = StepTraceFromFlags(cpu);
  ASSERT_FALSE(trace.ok());
  EXPECT_NE(trace.status().message().find("is a directory"), std::string::npos) << trace.status();

  absl::SetFlag(&FLAGS_trace, ScratchPath("trace.json"));
  absl::SetFlag(&FLAGS_trace_after_steps, 0);
  trace = StepTraceFromFlags(cpu);
  ASSERT_FALSE(trace.ok());
  EXPECT_NE(trace.status().message().find("--trace_after_steps"), std::string::npos) << trace.status();
  absl::SetFlag(&FLAGS_trace_after_steps, 20);
  absl::SetFlag(&FLAGS_trace_steps, 0);
  trace = StepTraceFromFlags(cpu);
  ASSERT_FALSE(trace.ok());
  EXPECT_NE(trace.status().message().find("--trace_steps"), std::string::npos) << trace.status();

  absl::SetFlag(&FLAGS_trace_steps, 5);
  trace = StepTraceFromFlags(cpu);
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_TRUE(trace->enabled());
  absl::SetFlag(&FLAGS_trace, "");
}

}  // namespace
}  // namespace dlspeed
