#!/usr/bin/env python3
"""Tests for tools/report.py: runs it on tools/testdata/report_results.jsonl
(hand-written records: resnet_single fp32/fp16 for ResNet-18 and -50,
resnet_dp and resnet_ddp on 2 GPUs, resnet_cpu_infer eager/int8, roberta_infer
eager/TorchScript/int8-dynamic, cpp_vs_python comparisons of C++ with Python
PyTorch, repeated configurations, a cut-short line, a record without precision,
a comparison without its Python time and one from an unknown binary) and checks
the report's numbers, charts and skipped lines; and that tools/records.py
writes records that the report reads.

  python3 tools/report_test.py        # or: bazel test //tools:report_test
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import records  # noqa: E402
import report as report_py  # noqa: E402  (its functions; the tests run it as a script)

REPORT = os.path.join(HERE, "report.py")
RESULTS = os.path.join(HERE, "testdata", "report_results.jsonl")
GPU = "gpu-01-nvidia-h100-80gb-hbm3-2.14.1-cifar10-"
CPU = "gpu-01-intel-r-xeon-r-platinum-8480-2.14.1-cifar10-"
CPU_SYNTHETIC = "gpu-01-intel-r-xeon-r-platinum-8480-2.14.1-synthetic-"
CPU_MACHINE = "gpu-01-intel-r-xeon-r-platinum-8480-2.14.1-"  # figures across data sets
CPP_VS_PYTHON = "Ours: C++ against Python PyTorch"
INT8 = "Ours: int8: static (ResNet) against dynamic (RoBERTa)"


def python_with_matplotlib():
    """This interpreter if it has matplotlib, else Debian's (python3-matplotlib)."""
    for python in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode == 0:
            return python
    raise RuntimeError("no python3 with matplotlib: apt-get install python3-matplotlib")


def run_report(results, out):
    return subprocess.run([python_with_matplotlib(), REPORT, results, "--out", out], capture_output=True, text=True)


def rows_of(report, heading):
    """The table rows (lists of cells) under the heading "### `heading`"."""
    section = report.split(f"### {heading}")[1].split("\n#")[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")][1:]


def report_of(test, records):
    """The report.md that report.py writes for `records` (dicts), checking that it succeeds."""
    with tempfile.TemporaryDirectory() as out:
        path = os.path.join(out, "results.jsonl")
        with open(path, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
        done = run_report(path, out)
        test.assertEqual(done.returncode, 0, done.stderr)
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            return f.read()


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = cls.tmp.name
        cls.done = run_report(RESULTS, cls.out)
        with open(os.path.join(cls.out, "report.md"), encoding="utf-8") as f:
            cls.report = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def section(self, figure):
        """The text under the heading "### `figure`" ("Figure 5", or an Ours figure's whole heading)."""
        parts = self.report.split(f"### {figure}")
        self.assertEqual(len(parts), 2, f"{figure}: {len(parts) - 1} headings:\n{self.report}")
        return parts[1].split("\n#")[0]

    def row(self, figure, *cells):
        """The row of `figure`'s table that starts with `cells`."""
        start = "| " + " | ".join(cells) + " |"
        rows = [line for line in self.section(figure).splitlines() if line.startswith(start)]
        self.assertEqual(len(rows), 1, f"{figure}: rows starting {start!r}:\n{self.report}")
        return [cell.strip() for cell in rows[0].strip("|").split("|")]

    def test_runs_and_names_the_records_used(self):
        self.assertEqual(self.done.returncode, 0, self.done.stderr)
        self.assertIn("22 records used, 4 lines skipped", self.report)

    def test_speedups_over_one_device_fp32(self):
        # avg_epoch_seconds fp32 / mixed: 9.84 / 7.02 = 1.4017, 31.62 / 10.71 = 2.9524
        self.assertEqual(self.row("Figure 1", "ResNet-18", "1 device", "fp16", "512")[-1], "1.40x")
        self.assertEqual(self.row("Figure 1", "ResNet-50", "1 device", "fp16", "512")[-1], "2.95x")
        self.assertEqual(self.row("Figure 1", "ResNet-18", "1 device", "fp32", "512")[-1], "1.00x")
        # 9.84 / 6.10 = 1.613 (DP, 2 GPUs); 9.84 / 3.95 = 2.491 (DDP, 2 processes, fp16)
        self.assertEqual(self.row("Figure 1", "ResNet-18", "DP ×2", "fp32", "1024")[-1], "1.61x")
        self.assertEqual(self.row("Figure 1", "ResNet-18", "DDP ×2", "fp16", "512")[-1], "2.49x")
        self.assertIn("1.0 = ResNet-18: 1 device, fp32, batch 512 (9.84 s an epoch)", self.report)

    def test_time_by_batch_size(self):
        self.assertEqual(self.row("Figure 3", "ResNet-18", "1 device", "fp32", "256")[4:6], ["11.05", "11.05"])
        self.assertEqual(self.row("Figure 3", "ResNet-18", "1 device", "fp32", "512")[4:6], ["9.84", "9.84"])

    def test_time_by_batch_size_of_epochs_cut_short_is_from_throughput(self):
        # 3 steps an epoch: batch 128's epoch holds twice the images of batch
        # 64's, so its own epoch time (0.27 s against 0.15 s) says nothing.
        base = {"schema_version": 1, "binary": "resnet_single", "model": "resnet18", "depth": 18, "devices": 1,
                "precision": "fp32", "mixed": False, "dataset": "fashion-mnist", "device": "cpu",
                "device_name": "Test CPU", "hostname": "h", "libtorch_version": "2.13.0", "max_steps": 3,
                "train_samples": 1024, "throughput_unit": "images/s", "timestamp": "2026-11-27T10:00:00Z"}
        lines = [dict(base, batch_size=64, avg_epoch_seconds=0.15, throughput=1280.0),
                 dict(base, batch_size=128, avg_epoch_seconds=0.27, throughput=1422.0)]
        section = report_of(self, lines).split("### Figure 3")[1].split("\n#")[0]
        self.assertIn("| ResNet-18 | 1 device | fp32 | 64 | 0.15 | 0.80* | 1280 | 3 |", section)
        self.assertIn("| ResNet-18 | 1 device | fp32 | 128 | 0.27 | 0.72* | 1422 | 3 |", section)
        self.assertIn("whole training set at the run's throughput", section)

    def test_latest_of_repeated_configuration_is_used(self):
        # Lines 10 (5.80 s, earlier) and 11 (5.30 s): 9.84 / 5.30 = 1.857.
        row = self.row("Figure 1", "ResNet-18", "DDP ×2", "fp32", "512")
        self.assertEqual(row[4:], ["5.30", "9434", "93.0 %", "1.86x"])
        self.assertIn("2 records (lines 10, 11); the latest, line 11 (2026-11-20T11:12:45Z), is used", self.report)

    def test_cpu_inference_table(self):
        # Median ms a batch and speed-up over eager: 12.1 / 4.3 = 2.814.
        row = self.row("Figure 5", "ResNet-18, batch 32, 16 threads", "int8 (x86)")
        self.assertEqual(row[2], "4.30")
        self.assertEqual(row[-1], "2.81x")
        self.assertEqual(self.row("Figure 5", "ResNet-18, batch 32, 16 threads", "eager")[2], "12.10")

    def test_roberta_cpu_inference_table(self):
        # 80.0 / 32.0 = 2.50
        row = self.row("Figure 6", "roberta-base, batch 8, seq 128 padded, 16 threads", "int8-dynamic")
        self.assertEqual(row[2], "32.00")
        self.assertEqual(row[-1], "2.50x")

    def test_cpp_against_python_table(self):
        # Python / C++ medians: 45.5 / 41.2 = 1.104 (the later of two records), 252 / 210 = 1.20,
        # 13.3 / 12.1 = 1.099, 5.1 / 4.3 = 1.186, 78.4 / 80.0 = 0.98, 41.6 / 32.0 = 1.30.
        self.assertEqual(self.row(CPP_VS_PYTHON, "resnet18 train step", "fp32", "32"),
                         ["resnet18 train step", "fp32", "32", "16", "41.20", "45.50", "1.10x", "3", "2.14.1+cpu"])
        self.assertEqual(self.row(CPP_VS_PYTHON, "resnet18 ddp 2 processes", "fp32")[4:7],
                         ["210.00", "252.00", "1.20x"])
        self.assertEqual(self.row(CPP_VS_PYTHON, "resnet18 cpu inference", "eager")[4:7],
                         ["12.10", "13.30", "1.10x"])
        self.assertEqual(self.row(CPP_VS_PYTHON, "resnet18 cpu inference", "int8")[4:7], ["4.30", "5.10", "1.19x"])
        self.assertEqual(self.row(CPP_VS_PYTHON, "roberta-base cpu inference", "eager")[4:7],
                         ["80.00", "78.40", "0.98x"])
        self.assertEqual(self.row(CPP_VS_PYTHON, "roberta-base cpu inference", "int8-dynamic")[4:7],
                         ["32.00", "41.60", "1.30x"])
        section = self.section(CPP_VS_PYTHON)
        self.assertEqual(len([line for line in section.splitlines() if line.startswith("| ")]), 2 + 6, section)
        self.assertIn("> 1 means C++ faster", section)
        self.assertIn("## Intel(R) Xeon(R) Platinum 8480+ (gpu-01), LibTorch 2.14.1, across data sets", self.report)
        self.assertIn("cpp_vs_python: resnet18 train step, fp32, batch 32: 2 records (lines 19, 20); "
                      "the latest, line 20 (2026-11-21T10:30:00Z), is used", self.report)

    def test_int8_static_against_dynamic(self):
        # eager / int8: ResNet-18 12.1 / 4.3 = 2.81 (cifar10), roberta-base 80.0 / 32.0 = 2.50 (synthetic).
        self.assertEqual(self.row(INT8, "ResNet-18, batch 32, 16 threads"),
                         ["ResNet-18, batch 32, 16 threads", "static (x86)", "cifar10", "12.10", "4.30", "2.81x"])
        self.assertEqual(self.row(INT8, "roberta-base, batch 8, seq 128 padded, 16 threads"),
                         ["roberta-base, batch 8, seq 128 padded, 16 threads", "dynamic", "synthetic", "80.00",
                          "32.00", "2.50x"])
        self.assertIn("2026-11-21, cifar10 and synthetic. C++ int8 speed-up over fp32 eager", self.section(INT8))

    def test_captions_name_machine_libtorch_and_date(self):
        self.assertIn("*NVIDIA H100 80GB HBM3 (gpu-01), LibTorch 2.14.1, 2026-11-20, cifar10.", self.report)
        self.assertIn("*Intel(R) Xeon(R) Platinum 8480+ (gpu-01), LibTorch 2.14.1, 2026-11-21, cifar10.", self.report)

    def test_charts_are_png_files(self):
        for name in (GPU + "fig1-resnet-train-speedup.png", GPU + "fig3-resnet-batch-size.png",
                     CPU + "fig5-resnet-cpu-infer.png", CPU_SYNTHETIC + "fig6-roberta-cpu-infer.png",
                     CPU_MACHINE + "ours-cpp-vs-python.png", CPU_MACHINE + "ours-int8-static-vs-dynamic.png"):
            self.assertIn(f"]({name})", self.report)
            with open(os.path.join(self.out, name), "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, name)
        pngs = sorted(n for n in os.listdir(self.out) if n.endswith(".png"))
        self.assertEqual(len(pngs), 6, pngs)

    def test_figures_without_records_are_listed_not_drawn(self):
        missing = self.report.split("## Not in this results file")[1].split("##")[0]
        for name in ("Figure 2", "Figure 4", "Figure 7", "Figure 8",
                     "Ours: ResNet training precision and memory format"):
            self.assertIn(f"- {name}", missing)
        for name in ("Figure 1", "Figure 6", "C++ against Python", "int8"):
            self.assertNotIn(name, missing)

    def test_skipped_lines_reported_with_line_and_reason(self):
        self.assertIn("| 6 | not JSON (Unterminated string", self.report)
        self.assertIn("| 8 | resnet_dp record lacks precision |", self.report)
        self.assertIn("| 13 | unknown binary 'mnist_train' |", self.report)
        self.assertIn("| 22 | cpp_vs_python record lacks python_seconds |", self.report)
        self.assertEqual([line for line in self.done.stderr.splitlines()],
                         ["report: line 6: not JSON (Unterminated string starting at, column 69)",
                          "report: line 8: resnet_dp record lacks precision",
                          "report: line 13: unknown binary 'mnist_train'",
                          "report: line 22: cpp_vs_python record lacks python_seconds"])

    def test_missing_file_is_one_line_and_exit_1(self):
        with tempfile.TemporaryDirectory() as out:
            done = run_report(os.path.join(out, "absent.jsonl"), out)
        self.assertEqual(done.returncode, 1)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertRegex(done.stderr, r"^report: cannot read .*absent\.jsonl: No such file or directory\n$")

    def test_records_module_writes_what_the_report_reads(self):
        with tempfile.TemporaryDirectory() as out:
            results = os.path.join(out, "results.jsonl")
            with open(results, "w") as f:
                f.write('{"binary": "resnet_single", "model"')  # a cut-short line without its newline
            rec = records.comparison("resnet50 cpu inference", "int8", batch_size=32, threads=2, cpp_seconds=0.01,
                                     python_seconds=0.012, rounds=1, libtorch_version="2.13.0",
                                     python_torch_version="2.13.0+cpu", device_name="Test CPU", model="resnet50")
            records.append(results, rec)
            records.append(results, dict(rec, variant="eager", cpp_seconds=0.04, python_seconds=0.038))
            with open(results, encoding="utf-8") as f:
                lines = f.read().splitlines()
            done = run_report(results, out)
            with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
                report = f.read()
        self.assertEqual(len(lines), 3, lines)
        for field in ("schema_version", "binary", "work", "variant", "batch_size", "threads", "cpp_seconds",
                      "python_seconds", "python_over_cpp", "rounds", "libtorch_version", "python_torch_version",
                      "device", "device_name", "hostname", "timestamp", "git_revision", "command"):
            self.assertIn(field, rec)
        self.assertRegex(rec["git_revision"], r"^([0-9a-f]{7,}(-dirty)?|unknown)$")
        self.assertEqual(records.command_line(["/x/y/infer_report.py", "--depth", "50", "--out", "a b"]),
                         "infer_report.py --depth 50 --out 'a b'")
        self.assertRegex(rec["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertAlmostEqual(rec["python_over_cpp"], 1.2)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("2 records used, 1 lines skipped", report)
        self.assertIn("| resnet50 cpu inference | int8 | 32 | 2 | 10.00 | 12.00 | 1.20x | 1 | 2.13.0+cpu |", report)
        self.assertIn("| resnet50 cpu inference | eager | 32 | 2 | 40.00 | 38.00 | 0.95x | 1 | 2.13.0+cpu |", report)

    def test_no_usable_record_is_one_line_and_exit_1_and_leaves_the_report(self):
        with tempfile.TemporaryDirectory() as out:
            empty = os.path.join(out, "empty.jsonl")
            open(empty, "w").close()
            with open(os.path.join(out, "report.md"), "w") as f:
                f.write("an earlier report\n")
            done = run_report(empty, out)
            with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
                report = f.read()
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.stderr, f"report: {empty} holds no usable record; nothing written to {out}\n")
        self.assertEqual(report, "an earlier report\n")

    def test_a_failed_write_leaves_the_file_as_it_was(self):
        def fail(temporary):
            with open(temporary, "w") as f:
                f.write("half")
            raise OverflowError("as matplotlib's savefig can")

        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "chart.png")
            with open(path, "w") as f:
                f.write("the earlier chart")
            with self.assertRaises(OverflowError):
                report_py.write_whole(path, fail)
            with open(path) as f:
                self.assertEqual(f.read(), "the earlier chart")
            self.assertEqual(os.listdir(out), ["chart.png"])




class GpuInferenceTest(unittest.TestCase):
    """Figure 7 from resnet_gpu_script records: each variant in fp32 and in
    fp16 channels_last, CUDA-graph replay included, speed-ups over eager."""

    def test_gpu_inference_table_and_chart(self):
        base = {"schema_version": 1, "binary": "resnet_gpu_script", "model": "resnet18", "depth": 18, "mixed": False,
                "batch_size": 32, "dataset": "cifar10", "device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3",
                "hostname": "gpu-01", "libtorch_version": "2.14.1", "timestamp": "2026-11-27T10:00:00Z",
                "test_samples": 10000, "test_accuracy": 0.93, "throughput_unit": "images/s"}
        lines = []
        for precision, channels_last, times in (("fp32", False, (2.0, 0.8, 0.5)), ("fp16", True, (2.1, 0.6, 0.25))):
            for name, ms in zip(("eager", "torchscript", "cuda-graph"), times):
                r = dict(base, variant=name, precision=precision, channels_last=channels_last,
                         batch_seconds={"median": ms / 1e3, "p10": ms / 1e3, "p90": ms / 1e3},
                         total_seconds=ms * 313 / 1e3, throughput=32e3 / ms)
                lines.append(json.dumps(r))
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "gpu.jsonl")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            done = run_report(path, out)
            self.assertEqual(done.returncode, 0, done.stderr)
            with open(os.path.join(out, "report.md")) as f:
                report = f.read()
            pngs = [n for n in os.listdir(out) if n.endswith(".png") and "fig7" in n]
            self.assertEqual(len(pngs), 1, os.listdir(out))
        # Each variant's median ms and its speed-up over eager of its own precision and memory format:
        # fp32 2.0 / 0.5 = 4.00, fp16 channels_last 2.1 / 0.25 = 8.40.
        rows = {row[1]: [row[2], row[-1]] for row in rows_of(report, "Figure 7")}
        self.assertEqual(len(rows), 6, report)
        self.assertEqual(rows["cuda-graph"], ["0.50", "4.00x"])
        self.assertEqual(rows["cuda-graph fp16 channels_last"], ["0.25", "8.40x"])
        self.assertEqual(rows["torchscript fp16 channels_last"], ["0.60", "3.50x"])
        # Without an fp16 channels_last eager, its speed-ups are over fp32 eager, and say so: 2.0 / 0.25 = 8.00.
        report = report_of(self, [line for line in map(json.loads, lines)
                                  if not (line["variant"] == "eager" and line["precision"] == "fp16")])
        rows = {row[1]: row[-1] for row in rows_of(report, "Figure 7")}
        self.assertEqual(rows["cuda-graph fp16 channels_last"], "8.00x vs fp32 eager")
        self.assertEqual(rows["cuda-graph"], "4.00x")

    def test_runs_that_differ_in_augmentation_or_optimizer_are_both_shown(self):
        base = {"schema_version": 1, "binary": "resnet_single", "model": "resnet18", "depth": 18, "devices": 1,
                "precision": "fp32", "mixed": False, "batch_size": 512, "dataset": "cifar10", "device": "cuda:0",
                "device_name": "GPU", "hostname": "h", "libtorch_version": "2.11.0", "train_samples": 50000,
                "timestamp": "2026-11-27T10:00:00Z", "throughput_unit": "images/s"}
        compare = {"schema_version": 1, "binary": "cpp_vs_python", "work": "resnet18 train step", "variant": "fp32",
                   "batch_size": 512, "threads": 16, "device": "cuda", "device_name": "GPU", "hostname": "h",
                   "libtorch_version": "2.11.0", "python_torch_version": "2.11.0", "rounds": 3,
                   "timestamp": "2026-11-27T10:00:00Z"}
        lines = [dict(base, avg_epoch_seconds=10.0, throughput=5000.0),
                 dict(base, avg_epoch_seconds=8.0, throughput=6250.0, augment=False),
                 dict(base, avg_epoch_seconds=9.0, throughput=5500.0, optimizer_kernels="foreach"),
                 dict(compare, cpp_seconds=0.007, python_seconds=0.0068, cpp_optimizer_kernels="fused",
                      python_implementation="default"),
                 dict(compare, cpp_seconds=0.0075, python_seconds=0.0068, cpp_optimizer_kernels="foreach",
                      python_implementation="default")]
        report = report_of(self, lines)
        self.assertNotIn("Repeated configurations", report)
        self.assertIn("| ResNet-18 | 1 device | fp32 | 512 |", report)
        self.assertIn("| ResNet-18 | 1 device | fp32 no augmentation | 512 |", report)
        self.assertIn("| ResNet-18 | 1 device | fp32 foreach SGD | 512 |", report)
        self.assertIn("| resnet18 train step | fp32 (SGD: C++ fused, Python default) | 512 |", report)
        self.assertIn("| resnet18 train step | fp32 (SGD: C++ foreach, Python default) | 512 |", report)

    def test_commands_are_listed_once_with_their_revision(self):
        base = {"schema_version": 1, "binary": "resnet_gpu_script", "model": "resnet18", "depth": 18, "mixed": False,
                "batch_size": 32, "dataset": "cifar10", "device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3",
                "hostname": "gpu-01", "libtorch_version": "2.14.1", "timestamp": "2026-11-27T10:00:00Z",
                "test_samples": 10000, "test_accuracy": 0.93, "throughput_unit": "images/s", "precision": "fp32",
                "batch_seconds": {"median": 0.001}, "total_seconds": 0.3, "throughput": 32000}
        script = "resnet_gpu_script -m 0 -r 18 --model='a ```b.pth'"  # a fence inside must not end the block
        lines = [dict(base, variant=name, command=script, git_revision="abc1234")
                 for name in ("eager", "torchscript", "cuda-graph")]  # one run, three records
        lines.append(dict(base, variant="eager", precision="fp16", command="resnet_gpu_script -m 1 -r 18",
                          git_revision="abc1234-dirty"))
        lines.append(dict(base, variant="torchscript", precision="fp16"))  # from before records named commands
        section = report_of(self, lines).split("### Commands")[1]
        self.assertIn("\n````\ngit abc1234: " + script + "\ngit abc1234-dirty: resnet_gpu_script -m 1 -r 18\n````\n",
                      section)
        self.assertIn("- 1 record does not say how it was run", section)


class ConfigurationTest(unittest.TestCase):
    """Records that differ in what they measured are not repeats of one
    configuration, and a speed-up compares like with like: sequence length,
    CPU threads, augmentation and SGD kernels, int8 engine."""

    TRAIN = {"schema_version": 1, "binary": "resnet_single", "model": "resnet18", "devices": 1, "precision": "fp32",
             "batch_size": 512, "dataset": "cifar10", "device": "cuda:0", "device_name": "GPU", "hostname": "h",
             "libtorch_version": "2.11.0", "train_samples": 50000, "timestamp": "2026-11-27T10:00:00Z"}
    INFER = {"schema_version": 1, "binary": "resnet_cpu_infer", "model": "resnet18", "batch_size": 32,
             "dataset": "cifar10", "device": "cpu", "device_name": "CPU", "hostname": "h", "libtorch_version": "2.13.0",
             "threads": 2, "timestamp": "2026-11-27T10:00:00Z"}

    def test_roberta_records_of_other_sequence_lengths_are_apart(self):
        infer = dict(self.INFER, binary="roberta_infer", model="roberta-base", dataset="synthetic", precision="fp32")
        train = dict(self.TRAIN, binary="roberta_train", model="roberta-base", batch_size=32, dataset="synthetic",
                     pad_to_max_len=True)
        report = report_of(self, [
            dict(infer, variant="eager", max_len=32, batch_seconds={"median": 0.3}),
            dict(infer, variant="int8-dynamic", max_len=32, batch_seconds={"median": 0.1}),
            dict(infer, variant="eager", max_len=128, batch_seconds={"median": 1.3}),
            dict(train, max_len=64, avg_epoch_seconds=4.0),
            dict(train, devices=2, max_len=128, avg_epoch_seconds=8.0)])
        self.assertNotIn("Repeated configurations", report)
        # int8 at seq 32 against eager at seq 32: 0.3 / 0.1; not eager at 128 (13.00x).
        self.assertIn(["roberta-base, batch 32, seq 32, 2 threads", "int8-dynamic", "100.00", "-", "-", "-", "-",
                       "3.00x"], rows_of(report, "Figure 6"))
        self.assertIn(["roberta-base, batch 32, seq 128, 2 threads", "eager", "1300.00", "-", "-", "-", "-", "1.00x"],
                      rows_of(report, "Figure 6"))
        # DDP at seq 128 has no 1-device run at seq 128 to compare with.
        self.assertIn(["roberta-base, seq 128 padded", "DDP ×2", "fp32", "32", "8.00", "-", "-", "-"],
                      rows_of(report, "Figure 2"))
        self.assertIn("- roberta-base, seq 128 padded: no 1-device fp32 record, so no speed-up.", report)

    def test_speedups_are_over_a_run_of_the_same_augmentation_and_sgd_kernels(self):
        report = report_of(self, [dict(self.TRAIN, avg_epoch_seconds=8.0, augment=False),
                                  dict(self.TRAIN, avg_epoch_seconds=10.0),
                                  dict(self.TRAIN, avg_epoch_seconds=7.0, precision="fp16"),
                                  dict(self.TRAIN, binary="resnet_ddp", devices=2, avg_epoch_seconds=5.0),
                                  dict(self.TRAIN, binary="resnet_ddp", devices=2, avg_epoch_seconds=2.0,
                                       optimizer_kernels="foreach"),
                                  dict(self.TRAIN, avg_epoch_seconds=9.0, precision="fp16", augment=False)])
        speedups = {(row[1], row[2]): row[-1] for row in rows_of(report, "Figure 1")}
        self.assertEqual(speedups, {("1 device", "fp32 no augmentation"): "1.00x", ("1 device", "fp32"): "1.00x",
                                    ("1 device", "fp16"): "1.43x", ("DDP ×2", "fp32"): "2.00x",
                                    ("DDP ×2", "fp32 foreach SGD"): "-",
                                    ("1 device", "fp16 no augmentation"): "0.89x"})
        self.assertIn("- ResNet-18: no 1-device fp32 foreach SGD record, so no speed-up.", report)

    def test_cpu_threads_are_part_of_a_training_configuration(self):
        cpu = dict(self.TRAIN, device="cpu", batch_size=64, max_steps=3, train_samples=1024)
        report = report_of(self, [dict(cpu, threads=1, avg_epoch_seconds=2.0, throughput=100.0),
                                  dict(cpu, threads=2, avg_epoch_seconds=1.0, throughput=200.0),
                                  dict(cpu, threads=1, precision="bf16", avg_epoch_seconds=1.6, throughput=125.0),
                                  # 2 processes of 1 thread: 2 threads in all, as the 1-device run above.
                                  dict(cpu, binary="resnet_ddp", devices=2, threads=1, avg_epoch_seconds=0.8,
                                       throughput=250.0)])
        self.assertNotIn("Repeated configurations", report)
        speedups = {(row[0], row[1], row[2]): row[-1] for row in rows_of(report, "Figure 1")}
        self.assertEqual(speedups, {("ResNet-18, 1 threads", "1 device", "fp32"): "1.00x*",
                                    ("ResNet-18, 1 threads", "1 device", "bf16"): "1.25x*",
                                    ("ResNet-18, 2 threads", "1 device", "fp32"): "1.00x*",
                                    ("ResNet-18, 2 threads", "DDP ×2", "fp32"): "1.25x*"})

    def test_int8_of_several_engines_are_each_a_bar(self):
        lines = [dict(self.INFER, variant="eager", batch_seconds={"median": 0.012})]
        lines += [dict(self.INFER, variant="int8", engine=engine, batch_seconds={"median": seconds})
                  for engine, seconds in (("x86", 0.004), ("fbgemm", 0.006), ("onednn", 0.008))]
        self.assertEqual([row[1:] for row in rows_of(report_of(self, lines), INT8)],
                         [["static (fbgemm)", "cifar10", "12.00", "6.00", "2.00x"],
                          ["static (onednn)", "cifar10", "12.00", "8.00", "1.50x"],
                          ["static (x86)", "cifar10", "12.00", "4.00", "3.00x"]])
        for r in lines:
            r["_line"] = 1
        groups, series, values = report_py.int8_static_vs_dynamic(lines)["chart"][:3]
        self.assertEqual(groups, ["ResNet-18, batch 32, 2 threads"])
        self.assertEqual(values, {(groups[0], f"static int8 (ResNet, resnet_cpu_infer, {engine})"): speed
                                  for engine, speed in (("fbgemm", 2.0), ("onednn", 1.5), ("x86", 3.0))})

    def test_times_and_counts_of_no_measurement_are_skipped(self):
        # Negative, zero or over 1e6 s: 1.7e305 s overflowed matplotlib's axis.
        lines = [dict(self.INFER, variant="eager", batch_seconds={"median": 0.012}),
                 dict(self.INFER, variant="torchscript", batch_seconds={"median": -0.004}),
                 dict(self.INFER, variant="int8", batch_seconds={"median": 0.0}),
                 dict(self.INFER, variant="torchscript-frozen", batch_seconds={"median": 1.7e305}),
                 dict(self.TRAIN, batch_size=64, avg_epoch_seconds=1.7e308),
                 dict(self.TRAIN, batch_size=128, avg_epoch_seconds=1.0),
                 {"schema_version": 1, "binary": "cpp_vs_python", "work": "w", "variant": "eager", "batch_size": 1,
                  "cpp_seconds": 1e-300, "python_seconds": 1.0},
                 # 4000-digit threads times devices would not print (Python's 4300 digits).
                 dict(self.TRAIN, binary="resnet_ddp", device="cpu", devices=10 ** 4000, threads=10 ** 4000,
                      avg_epoch_seconds=1.0)]
        report = report_of(self, lines)
        self.assertIn("2 records used, 6 lines skipped", report)
        for line, why in ((2, "resnet_cpu_infer record has a bad batch_seconds.median (-0.004)"),
                          (3, "resnet_cpu_infer record has a bad batch_seconds.median (0.0)"),
                          (4, "resnet_cpu_infer record has a bad batch_seconds.median (1.7e+305)"),
                          (5, "resnet_single record has a bad avg_epoch_seconds (1.7e+308)"),
                          (7, "cpp_vs_python record has a bad cpp_seconds (1e-300)"),
                          (8, "resnet_ddp record has a bad devices (1000")):
            self.assertIn(f"| {line} | {why}", report)


def script(path, text):
    """Writes an executable Python script (a stand-in for a binary or a peer's Python)."""
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\n{text}")
    os.chmod(path, 0o755)
    return path


class ComparisonScriptsTest(unittest.TestCase):
    """The scripts that time C++ against Python and append cpp_vs_python
    records for the report: bad flags and outputs end in one line."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_script(self, name, *args, **env):
        return subprocess.run([sys.executable, os.path.join(HERE, name), *args], capture_output=True, text=True,
                              env=dict(os.environ, **env))

    def test_no_rounds_is_a_usage_error(self):
        for name in ("infer_report.py", "train_step_report.py"):
            done = self.run_script(name, "--rounds", "0", "--binary", sys.executable)  # a file that exists
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertTrue(done.stderr.endswith("error: --rounds must be at least 1\n"), done.stderr)

    def test_benchmark_output_that_is_not_json_is_one_line_and_exit_1(self):
        binary = script(os.path.join(self.dir, "train_step_benchmark"), "print('Running train_step_benchmark')\n")
        done = self.run_script("train_step_report.py", "--binary", binary, "--rounds", "1")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertRegex(done.stderr, r"^train_step_report: not JSON \(Expecting value, line 1\) from: .*"
                                      r"train_step_benchmark --benchmark_filter=")

    def test_roberta_out_is_checked_first_and_written_after_the_records(self):
        binary = script(os.path.join(self.dir, "roberta_infer"), """import json, os, sys
results = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--results="))
os.makedirs(os.environ["BLOCK_OUT"], exist_ok=True)  # --out becomes a directory: writing it fails
variant = "int8-dynamic" if "--quantize" in sys.argv else "torchscript-frozen" if "--script" in sys.argv else "eager"
with open(results, "a") as f:
    f.write(json.dumps({"variant": variant, "batch_seconds": {"median": 0.1}, "libtorch_version": "2.13.0"}) + "\\n")
""")
        python = script(os.path.join(self.dir, "python"), """import json
for variant in ("eager", "torchscript", "int8"):
    print(json.dumps({"variant": variant, "median_ms": 120.0, "transformers": "4.0", "torch": "2.13.0+cpu",
                      "threads": 1, "quantized_engine": "x86"}))
""")
        results, out = os.path.join(self.dir, "results.jsonl"), os.path.join(self.dir, "report.md")
        flags = ["--bin", binary, "--python", python, "--rounds", "1", "--threads", "1", "--results", results]
        done = self.run_script("roberta_infer_report.py", *flags, "--out", os.path.join(self.dir, "no", "report.md"),
                               BLOCK_OUT=out)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertTrue(done.stderr.endswith(f"--out {self.dir}/no/report.md: cannot write a file in {self.dir}/no\n"),
                        done.stderr)
        self.assertFalse(os.path.exists(out), "measured before checking --out")

        done = self.run_script("roberta_infer_report.py", *flags, "--out", out, BLOCK_OUT=out)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertTrue(done.stderr.endswith(f"roberta_infer_report: cannot write --out {out}: Is a directory\n"),
                        done.stderr)
        with open(results) as f:
            self.assertEqual([json.loads(line)["variant"] for line in f], ["eager", "torchscript-frozen",
                                                                            "int8-dynamic"])


class OlderSchemaTest(unittest.TestCase):
    def test_records_of_another_schema_are_skipped_by_line(self):
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "old.jsonl")
            with open(path, "w") as f:
                f.write(json.dumps({"schema_version": 0, "binary": "resnet_single"}) + "\n")
                f.write('{"binary": "resnet_single", "model": \n')
            done = run_report(path, out)
            self.assertEqual(done.returncode, 1, done.stderr)  # no usable record
            lines = done.stderr.splitlines()
            self.assertEqual(len(lines), 3, done.stderr)
            self.assertTrue(lines[0].startswith("report: line 1: schema_version 0"), lines)
            self.assertTrue(lines[1].startswith("report: line 2: not JSON"), lines)
            self.assertTrue(lines[2].endswith("holds no usable record; nothing written to " + out), lines)


class LargeChartTest(unittest.TestCase):
    """Charts that would exceed Agg's 2**16 pixels a side (fuzz/report_fuzzer.py
    checks bar_chart's arguments but does not draw): a 9000-character model
    name and 300 batch sizes in one figure."""

    def test_long_labels_and_many_groups_are_drawn(self):
        base = {"schema_version": 1, "binary": "resnet_cpu_infer", "model": "resnet18", "variant": "eager",
                "batch_size": 32, "dataset": "cifar10", "device": "cpu", "device_name": "Test CPU " + "x" * 9000,
                "hostname": "h", "libtorch_version": "2.14.1", "threads": 2, "batch_seconds": {"median": 0.01}}
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "large.jsonl")
            with open(path, "w") as f:
                f.write(json.dumps(dict(base, model="m" * 9000)) + "\n")
                for batch in range(1, 301):
                    f.write(json.dumps(dict(base, hostname="g", batch_size=batch)) + "\n")
            done = run_report(path, out)
            self.assertEqual(done.returncode, 0, done.stderr)
            pngs = [n for n in os.listdir(out) if n.endswith(".png")]
            self.assertEqual(len(pngs), 2, pngs)
            self.assertTrue(all(len(n) < 255 for n in pngs), pngs)


if __name__ == "__main__":
    unittest.main()
