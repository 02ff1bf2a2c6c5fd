#include "common/timing.h"

#include <thread>

#include <gtest/gtest.h>

namespace dlspeed {
namespace {

TEST(TimingTest, StopwatchMeasuresSleep) {
  Stopwatch stopwatch;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double seconds = stopwatch.Seconds();
  EXPECT_GE(seconds, 0.019);
  EXPECT_LT(seconds, 1.0);
  stopwatch.Restart();
  EXPECT_LT(stopwatch.Seconds(), seconds);
}

TEST(TimingTest, SummarizeMatchesNumpyPercentiles) {
  // numpy.percentile([1, 2, 3, 4, 10], [10, 50, 90]) == [1.4, 3.0, 7.6]
  const Summary summary = Summarize({10, 2, 4, 1, 3});
  EXPECT_EQ(summary.count, 5);
  EXPECT_DOUBLE_EQ(summary.median, 3.0);
  EXPECT_DOUBLE_EQ(summary.p10, 1.4);
  EXPECT_DOUBLE_EQ(summary.p90, 7.6);
  EXPECT_DOUBLE_EQ(summary.mean, 4.0);
  EXPECT_DOUBLE_EQ(summary.total, 20.0);
  EXPECT_DOUBLE_EQ(summary.min, 1.0);
  EXPECT_DOUBLE_EQ(summary.max, 10.0);
  // Even count: the median is the mean of the two middle values.
  EXPECT_DOUBLE_EQ(Summarize({4, 1, 2, 3}).median, 2.5);
}

TEST(TimingTest, SummarizeHandlesEmptyAndSingleInput) {
  const Summary empty = Summarize({});
  EXPECT_EQ(empty.count, 0);
  EXPECT_EQ(empty.median, 0);
  EXPECT_EQ(empty.max, 0);
  const Summary one = Summarize({0.5});
  EXPECT_EQ(one.count, 1);
  EXPECT_DOUBLE_EQ(one.p10, 0.5);
  EXPECT_DOUBLE_EQ(one.p90, 0.5);
}

TEST(TimingTest, SummaryToJsonHasAllFields) {
  const nlohmann::json json = ToJson(Summarize({1, 3}));
  EXPECT_EQ(json["count"], 2);
  EXPECT_DOUBLE_EQ(json["median"].get<double>(), 2.0);
  for (const char* key : {"mean", "p10", "p90", "min", "max", "total"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
}

TEST(TimingTest, StepTimerReportsThroughputFromMedian) {
  StepTimer timer;
  timer.Record(1.0, 100);
  timer.Record(2.0, 100);
  timer.Record(100.0, 100);  // an outlier does not move the median
  EXPECT_EQ(timer.steps(), 3);
  EXPECT_DOUBLE_EQ(timer.StepSummary().median, 2.0);
  EXPECT_DOUBLE_EQ(timer.Throughput(), 50.0);
  const nlohmann::json json = timer.ToJson();
  EXPECT_EQ(json["items"], 300);
  EXPECT_DOUBLE_EQ(json["throughput"].get<double>(), 50.0);
  timer.Reset();
  EXPECT_EQ(timer.steps(), 0);
  EXPECT_EQ(timer.Throughput(), 0);
}

TEST(TimingTest, StepTimerTimesStartStop) {
  StepTimer timer(c10::Device(c10::kCPU));
  timer.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  timer.Stop(/*items=*/32);
  ASSERT_EQ(timer.steps(), 1);
  EXPECT_GE(timer.step_seconds()[0], 0.009);
  EXPECT_THROW(timer.Stop(32), std::logic_error);
  SynchronizeDevice(c10::Device(c10::kCPU));  // a no-op that must not throw
}

}  // namespace
}  // namespace dlspeed
