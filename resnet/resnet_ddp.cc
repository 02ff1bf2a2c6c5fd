// resnet_ddp: the study's Resnet-3, DistributedDataParallel training with one
// process per device. Run directly, it starts the processes itself (like
// `torchrun --standalone`); started by torchrun, srun or mpirun, it joins.
// Gradients are averaged by the bucketed, overlapped GradientReducer on a
// c10d process group (NCCL on GPUs, Gloo on CPUs), BatchNorm is synchronised
// across processes, and each process reads its own shard of the data.
//
//   bazel run //resnet:resnet_ddp -- 50 4 1         # ResNet-50, 4 GPUs, mixed
//   bazel run //resnet:resnet_ddp -- 18 2 0         # no GPU: 2 CPU processes, Gloo
//   torchrun --no-python --nproc-per-node 4 bazel-bin/resnet/resnet_ddp 50 4 1
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/amp.h"
#include "common/cli.h"
#include "common/data/dataset.h"
#include "common/data/loader.h"
#include "common/device.h"
#include "common/distributed/gradient_reducer.h"
#include "common/distributed/launcher.h"
#include "common/distributed/process_group.h"
#include "common/distributed/rank_env.h"
#include "common/distributed/sync_batchnorm.h"
#include "common/results.h"
#include "common/run_main.h"
#include "common/step_trace.h"
#include "common/stop_signal.h"
#include "common/training_stats.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "resnet/train.h"
#include "resnet/training_checkpoint.h"
#include "resnet/training_flags.h"
#include "resnet/training_run.h"

ABSL_FLAG(int64_t, batch_size, 512, "samples per process and step (the study: 512)");
ABSL_FLAG(std::string, device, "auto", "auto (one GPU per process if there are GPUs, else the CPU), cuda or cpu");
ABSL_FLAG(std::string, backend, "auto", "c10d backend: auto (nccl on GPUs, gloo on the CPU), nccl or gloo");
ABSL_FLAG(bool, sync_batchnorm, true, "synchronise BatchNorm statistics across processes (SyncBatchNorm)");
ABSL_FLAG(double, bucket_cap_mb, 25, "gradient bucket size in MiB (DDP's bucket_cap_mb)");
ABSL_FLAG(double, own_bucket_min_mb, 1,
          "on the CPU, gradients of at least this many MiB are allreduced in place, as buckets of their own, "
          "not copied into a shared one (above the largest gradient: always shared, as PyTorch's DDP)");
ABSL_FLAG(bool, overlap, true, "launch each bucket's allreduce during backward (false: all after backward)");
ABSL_FLAG(double, timeout_s, 300, "seconds allowed for the rendezvous and for each collective");
ABSL_FLAG(int64_t, checkpoint_every, 0, "rank 0 saves a training checkpoint every N steps to "
          "<models_dir>/Resnet-<d>[-mixed]-<n>gpus.ckpt (0: only when stopped by SIGINT/SIGTERM)");
ABSL_FLAG(bool, resume, false, "every rank continues from the checkpoint, if there is one (a shared file system)");
ABSL_FLAG(std::string, test_kill, "", "for fault tests: RANK:STEP makes that rank SIGKILL itself at that step");

namespace dlspeed {
namespace {

constexpr char kUsage[] =
    "trains a ResNet with DistributedDataParallel, one process per device (the study's Resnet-3).\n"
    "usage: resnet_ddp [flags] <18|34|50> <processes> <mixed: 0|1>\n"
    "  run directly it starts the processes; under torchrun, srun or mpirun it joins them";

struct Args {
  int depth;
  int processes;
  bool mixed;
};

Args ParseArgs(const std::vector<std::string>& positional) {
  if (positional.size() != 3) {
    ExitWithUsageError(absl::StrCat("expected 3 arguments <depth> <processes> <mixed>, got ", positional.size()));
  }
  Args args;
  absl::StatusOr<int> depth = ParseIntChoice(positional[0], {18, 34, 50}, "depth");
  if (!depth.ok()) ExitWithUsageError(depth.status().message());
  args.depth = *depth;
  absl::StatusOr<int> processes = ParseIntChoice(positional[1], {1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64}, "processes");
  if (!processes.ok()) ExitWithUsageError(processes.status().message());
  args.processes = *processes;
  absl::StatusOr<int> mixed = ParseIntChoice(positional[2], {0, 1}, "mixed");
  if (!mixed.ok()) ExitWithUsageError(mixed.status().message());
  args.mixed = *mixed == 1;
  return args;
}

// Whether processes run on GPUs, checked against the GPUs this host has.
absl::StatusOr<bool> UseGpus(int processes_here) {
  const std::string device = absl::GetFlag(FLAGS_device);
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (device == "cpu") return false;
  if (gpus == 0) {
    if (device == "cuda") return absl::InvalidArgumentError("--device=cuda: this host has no GPU (use --device=cpu)");
    return false;
  }
  if (processes_here > gpus) {
    return absl::InvalidArgumentError(absl::StrCat(processes_here, " processes on this host need one GPU each, but it has ",
                                                   gpus, " (use fewer processes, or --device=cpu)"));
  }
  return true;
}

std::optional<std::pair<int, int64_t>> ParseKill(const std::string& text) {
  if (text.empty()) return std::nullopt;
  int rank = 0;
  long long step = 0;
  if (std::sscanf(text.c_str(), "%d:%lld", &rank, &step) != 2) ExitWithUsageError("--test_kill must be RANK:STEP");
  return std::make_pair(rank, static_cast<int64_t>(step));
}

// The flags only resnet_ddp has; a bad value exits with one usage line.
void CheckDdpFlagsOrExit() {
  if (absl::GetFlag(FLAGS_batch_size) < 1) ExitWithUsageError("--batch_size must be at least 1");
  if (const double t = absl::GetFlag(FLAGS_timeout_s); !(t > 0 && t <= 1e6)) {
    ExitWithUsageError("--timeout_s must be above 0 and at most 1000000 (11.6 days)");
  }
  if (absl::GetFlag(FLAGS_bucket_cap_mb) <= 0) ExitWithUsageError("--bucket_cap_mb must be positive");
  if (absl::GetFlag(FLAGS_own_bucket_min_mb) <= 0) ExitWithUsageError("--own_bucket_min_mb must be positive");
  ParseKill(absl::GetFlag(FLAGS_test_kill));
  const std::string device = absl::GetFlag(FLAGS_device);
  if (device != "auto" && device != "cuda" && device != "cpu") {
    ExitWithUsageError(absl::StrCat("--device must be auto, cuda or cpu, not '", device, "'"));
  }
  if (absl::Status s = CheckBackendName(absl::GetFlag(FLAGS_backend)); !s.ok()) ExitWithUsageError(s.message());
}

// The flags checked against the device the processes train on.
void CheckDeviceFlagsOrExit(const std::string& precision, const c10::Device& device) {
  absl::StatusOr<Precision> mixed_precision = ParseMixedPrecision(precision, device);
  if (!mixed_precision.ok()) ExitWithUsageError(mixed_precision.status().message());
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(device);
  if (!trace.ok()) ExitWithUsageError(trace.status().message());
}

int Worker(const Args& args, const TrainingFlags& flags, const RankEnv& env) {
  const std::string who = absl::StrCat("rank ", env.rank);
  if (env.world_size != args.processes) {
    return ReportError(absl::StrCat(who, ": the launcher (", env.launcher, ") started ", env.world_size,
                                    " processes but the command line asks for ", args.processes));
  }
  absl::StatusOr<bool> gpus = UseGpus(/*processes_here=*/1);
  if (!gpus.ok()) return ReportError(gpus.status().message());
  absl::StatusOr<c10::Device> rank_device = RankDevice(env, *gpus);
  if (!rank_device.ok()) return ReportError(absl::StrCat(who, ": ", rank_device.status().message()));
  const c10::Device device = *rank_device;
  absl::StatusOr<std::string> chosen_backend = ChooseBackend(absl::GetFlag(FLAGS_backend), device.is_cuda());
  if (!chosen_backend.ok()) return ReportError(absl::StrCat(who, ": ", chosen_backend.status().message()));
  const std::string backend_name = *chosen_backend;
  absl::StatusOr<Precision> mixed_precision = ParseMixedPrecision(flags.precision, device);
  if (!mixed_precision.ok()) ExitWithUsageError(mixed_precision.status().message());
  const Precision precision = args.mixed ? *mixed_precision : Precision::kFp32;
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(device);
  if (!trace.ok()) ExitWithUsageError(trace.status().message());
  const int64_t epochs = flags.epochs;
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  const std::optional<std::pair<int, int64_t>> kill_at = ParseKill(absl::GetFlag(FLAGS_test_kill));

  // SIGINT/SIGTERM (passed on by the launcher) stop every rank at the same step, after a checkpoint.
  InstallStopSignalHandlers();
  if (device.is_cuda()) c10::impl::getDeviceGuardImpl(c10::kCUDA)->setDevice(device);  // NCCL's device
  ApplyTrainingFlags(flags);

  absl::StatusOr<ImageDataset> train = LoadTrainingSplit(flags, Split::kTrain);
  if (!train.ok()) return ReportError(absl::StrCat(who, ": ", train.status().message()));
  const ImageDataset& train_set = *train;

  ProcessGroupOptions group_options;
  group_options.backend = backend_name;
  group_options.timeout = std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_timeout_s) * 1000));
  group_options.device_index = device.is_cuda() ? device.index() : 0;
  absl::StatusOr<std::unique_ptr<ProcessGroup>> group = ProcessGroup::Create(env, group_options);
  if (!group.ok()) return ReportError(group.status().message());
  const bool lead = env.rank == 0;

  if (lead) {
    const nlohmann::json runtime = DescribeRuntime(device);
    std::cout << absl::StrFormat(
        "resnet_ddp: asked: depth=%d processes=%d mixed=%d precision=%s epochs=%d batch_size=%d per process "
        "dataset=%s device=%s backend=%s sync_batchnorm=%d bucket_cap_mb=%g own_bucket_min_mb=%g overlap=%d "
        "max_steps=%d seed=%d\n",
        args.depth, args.processes, args.mixed, flags.precision, epochs, batch_size,
        DatasetKindName(flags.dataset), absl::GetFlag(FLAGS_device), absl::GetFlag(FLAGS_backend),
        absl::GetFlag(FLAGS_sync_batchnorm), absl::GetFlag(FLAGS_bucket_cap_mb),
        absl::GetFlag(FLAGS_own_bucket_min_mb), absl::GetFlag(FLAGS_overlap),
        flags.max_steps, flags.seed);
    std::cout << absl::StrFormat(
        "resnet_ddp: in effect: %d processes (%s) on %s (%s), backend=%s, precision=%s, global batch %d, "
        "threads/process=%d, libtorch=%s git=%s, data=%s: %d train images\n",
        env.world_size, env.launcher, device.is_cuda() ? "GPUs" : "the CPU", runtime.value("device_name", "?"),
        backend_name, PrecisionName(precision), batch_size * env.world_size, runtime.value("threads", 0),
        runtime.value("libtorch_version", "?"), runtime.value("git_revision", "?"),
        flags.data_dir.empty() ? DatasetKindName(flags.dataset) : flags.data_dir, train_set.size())
              << std::flush;
  }

  LoaderOptions loader_options = LoaderOptionsFromFlags(flags, batch_size, device);
  loader_options.rank = env.rank;
  loader_options.world_size = env.world_size;
  if (absl::Status s = CheckLoaderOptions(train_set, loader_options); !s.ok()) ExitWithUsageError(s.message());

  torch::manual_seed(flags.seed);
  TrainOptions options = TrainOptionsFromFlags(flags, precision, device);
  std::unique_ptr<GradientReducer> reducer;
  options.after_backward = [&reducer] { reducer->FinishBackward(); };
  ResNetTrainer trainer(*MakeResNet(args.depth, train_set.num_classes), options);
  const c10::intrusive_ptr<c10d::Backend>& backend = (*group)->backend_ptr();
  const bool sync_bn = absl::GetFlag(FLAGS_sync_batchnorm) && env.world_size > 1;
  if (sync_bn) {
    trainer.model()->SetBatchNormTrainingForward(
        [backend](torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) { return SyncBatchNorm2d(bn, x, backend); });
  }
  ReducerOptions reducer_options;
  reducer_options.bucket_cap_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_bucket_cap_mb) * (1 << 20));
  reducer_options.own_bucket_min_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_own_bucket_min_mb) * (1 << 20));
  reducer_options.overlap = absl::GetFlag(FLAGS_overlap);

  RunTotals totals;
  ReducerStats reducer_stats;
  size_t buckets = 0;
  try {
    std::vector<torch::Tensor> state = trainer.model()->parameters();
    for (const torch::Tensor& buffer : trainer.model()->buffers()) state.push_back(buffer);
    const std::string checkpoint =
        flags.models_dir.empty()
            ? ""
            : absl::StrCat(flags.models_dir, "/Resnet-", args.depth, args.mixed ? "-mixed" : "", "-",
                           env.world_size, "gpus.ckpt");
    TrainingProgress start;
    bool resumed = false, unreadable = false;
    const std::string run_settings = CheckpointSettings(
        flags, {args.depth, precision, args.mixed, batch_size, train_set.size(), 0}, env.world_size);
    if (absl::GetFlag(FLAGS_resume) && !checkpoint.empty() && std::filesystem::exists(checkpoint)) {
      absl::StatusOr<TrainingProgress> at = LoadTrainingCheckpoint(checkpoint, trainer, run_settings);
      if (at.ok()) {
        start = *at;
        resumed = true;
      } else {
        // Said here; the exit waits for the check below, which the other ranks are in.
        std::cerr << "resnet_ddp: " << who << ": " << at.status().message() << std::endl;
        unreadable = true;
      }
    }
    if (absl::GetFlag(FLAGS_resume)) {
      if (absl::Status s = CheckSameResumePoint(*backend, device, checkpoint, resumed, unreadable, start.epoch,
                                                start.steps_done);
          !s.ok()) {
        if (lead && !unreadable) std::cerr << "resnet_ddp: " << s.message() << std::endl;
        std::_Exit(1);
      }
      if (lead && resumed) {
        std::cout << "Resuming from " << checkpoint << " at epoch " << start.epoch + 1 << ", step " << start.steps_done << std::endl;
      }
    }
    BroadcastFromRankZero(state, *backend);
    reducer = std::make_unique<GradientReducer>(trainer.model()->parameters(), backend, reducer_options);
    BatchLoader loader(train_set, loader_options);
    RunSettings settings;
    settings.epochs = epochs;
    settings.max_steps = flags.max_steps;
    settings.label = absl::StrCat("ResNet-", args.depth, " ", PrecisionName(precision), " x", env.world_size);
    settings.verbose = lead;
    settings.world_size = env.world_size;
    settings.trace = lead ? &*trace : nullptr;  // rank 0's steps
    // The record's reducer figures cover the timed epochs, as its step times do.
    settings.on_timing_start = [&] { reducer->ResetStats(); };
    settings.start_epoch = start.epoch;
    settings.start_step = start.steps_done;
    int64_t global_step = 0;
    const int64_t every = absl::GetFlag(FLAGS_checkpoint_every);
    StopAgreement stop(group->get(), device);
    settings.after_step = [&](int64_t epoch, int64_t steps_done) -> double {
      ++global_step;
      if (kill_at && kill_at->first == env.rank && kill_at->second == global_step) raise(SIGKILL);
      const int signal = stop.Check();
      double untimed = 0;
      if (lead && !checkpoint.empty() && (signal != 0 || (every > 0 && global_step % every == 0))) {
        untimed = UntimedSeconds(device, [&] {
          if (absl::Status s = SaveTrainingCheckpoint(checkpoint, trainer, {epoch, steps_done, run_settings});
              !s.ok()) {
            std::cerr << "resnet_ddp: " << s.message() << std::endl;
            std::_Exit(1);
          }
        });
      }
      if (signal != 0) {
        backend->barrier()->wait();  // the checkpoint is written before anyone leaves
        if (lead) {
          std::cerr << "resnet_ddp: stopped by signal " << signal << " at epoch " << epoch + 1 << ", step " << steps_done
                    << (checkpoint.empty() ? "" : absl::StrCat("; checkpoint saved to ", checkpoint, " (continue with --resume)"))
                    << std::endl;
        }
        std::_Exit(128 + signal);
      }
      return untimed;
    };
    if (lead) std::cout << (args.mixed ? "Mixed precision," : "Non-mixed,") << args.depth << std::endl;
    totals = TrainEpochs(trainer, loader, settings);
    backend->barrier()->wait();
    if (lead && !checkpoint.empty()) std::filesystem::remove(checkpoint);  // the run is complete
    reducer_stats = reducer->stats();
    buckets = reducer->bucket_indices().size();
  } catch (const std::exception& error) {
    const std::string peers = (*group)->DescribeFailedPeers();
    std::cerr << absl::StrCat("resnet_ddp: ", who, ": training stopped: ", ShortCollectiveError(error.what()), "; ", peers, "\n")
              << std::flush;
    std::_Exit(1);  // peers may be gone: do not wait on the process group's threads
  }
  reducer.reset();
  if (!lead) return 0;

  absl::StatusOr<ImageDataset> test = LoadTrainingSplit(flags, Split::kTest);
  if (!test.ok()) return ReportError(test.status().message());
  const ImageDataset& test_set = *test;
  trainer.model()->SetBatchNormTrainingForward(nullptr);
  const double accuracy = trainer.Evaluate(test_set, flags.eval_batch_size);
  std::cout << absl::StrFormat("Accuracy of the network on the %d test images: %d %%\n", test_set.size(),
                               WholePercent(accuracy, test_set.size()))
            << std::flush;
  std::string saved;
  if (!flags.models_dir.empty()) {
    saved = absl::StrCat(flags.models_dir, "/Resnet-", args.depth, args.mixed ? "-mixed" : "", "-",
                         env.world_size, "gpus.pth");
    if (absl::Status s = SaveStateDict(*trainer.model(), saved); !s.ok()) return ReportError(s.message());
    std::cout << "Saved " << saved << "\n";
  }
  if (totals.epoch_seconds.empty()) {
    // Resumed from a checkpoint written after the last step: nothing was timed to record.
    std::cout << "resnet_ddp: the checkpoint was written at the end of training: nothing left to train, so no "
              << "record\n";
  } else if (!flags.results.empty()) {
    nlohmann::json record = NewRecord("resnet_ddp", device);
    AddTrainingFields(flags, {args.depth, precision, args.mixed, batch_size, train_set.size(), test_set.size()},
                      &record);
    record["devices"] = env.world_size;
    record["processes"] = env.world_size;
    record["launcher"] = env.launcher;
    record["backend"] = backend_name;
    record["global_batch_size"] = batch_size * env.world_size;
    record["sync_batchnorm"] = sync_bn;
    record["bucket_cap_mb"] = absl::GetFlag(FLAGS_bucket_cap_mb);
    record["own_bucket_min_mb"] = absl::GetFlag(FLAGS_own_bucket_min_mb);
    record["overlap"] = absl::GetFlag(FLAGS_overlap);
    const double steps = static_cast<double>(std::max<int64_t>(reducer_stats.steps, 1));  // later epochs
    record["reducer"] = {{"buckets", buckets},
                         {"steps", reducer_stats.steps},
                         {"allreduces_per_step", reducer_stats.allreduces / steps},
                         {"bytes_per_step", reducer_stats.bytes / steps},
                         {"wait_seconds_per_step", reducer_stats.wait_seconds / steps},
                         // NCCL's wait blocks the CUDA stream, not the host (gradient_reducer.h).
                         {"wait_is_host_only", backend_name == "nccl"}};
    AddRunFields(totals, &record);
    record["test_accuracy"] = accuracy;
    record["model_path"] = saved;
    if (absl::Status s = AppendRecord(flags.results, record); !s.ok()) return ReportError(s.message());
    std::cout << "Record appended to " << flags.results << "\n";
  }
  if (lead) {
    if (absl::Status s = trace->Finish(); !s.ok()) std::cerr << "resnet_ddp: " << s.message() << std::endl;
  }
  return 0;
}

int Main(int argc, char** argv) {
  const Args args = ParseArgs(ParseCommandLineOrExit(argc, argv, kUsage));
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(getenv);
  if (!env.ok()) return ReportError(env.status().message());
  // Checked here, before any worker starts: a mistake is one line, not one per
  // rank. Only rank 0 (or the launcher, beside it) appends the record.
  const absl::StatusOr<TrainingFlags> flags =
      ReadTrainingFlags(/*check_results=*/!env->has_value() || (*env)->rank == 0);
  if (!flags.ok()) ExitWithUsageError(flags.status().message());
  CheckDdpFlagsOrExit();
  if (env->has_value()) return Worker(args, *flags, **env);

  absl::StatusOr<bool> gpus = UseGpus(args.processes);
  if (!gpus.ok()) return ReportError(gpus.status().message());
  CheckDeviceFlagsOrExit(flags->precision, *gpus ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU));
  if (absl::StatusOr<std::string> b = ChooseBackend(absl::GetFlag(FLAGS_backend), *gpus); !b.ok()) {
    return ReportError(b.status().message());
  }
  if (!*gpus && absl::GetFlag(FLAGS_device) == "auto") {
    std::cout << "resnet_ddp: no GPU here: running " << args.processes << " processes on the CPU with Gloo\n"
              << std::flush;
  }
  LaunchOptions launch;
  launch.nproc = args.processes;
  launch.name = "resnet_ddp";
  launch.shutdown_timeout = std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_timeout_s) * 1000));
  return LaunchLocalWorkers(argc, argv, launch);
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
