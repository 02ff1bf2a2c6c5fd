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
        row = self.row("Figure 6", "roberta-base, batch 8, 16 threads", "int8-dynamic")
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
                         ["ResNet-18, batch 32, 16 threads", "static (x86)", "cifar10", "-", "12.10", "4.30", "2.81x"])
        self.assertEqual(self.row(INT8, "roberta-base, batch 8, 16 threads"),
                         ["roberta-base, batch 8, 16 threads", "dynamic", "synthetic", "128", "80.00", "32.00",
                          "2.50x"])
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

    def test_empty_file_says_no_records(self):
        with tempfile.TemporaryDirectory() as out:
            empty = os.path.join(out, "empty.jsonl")
            open(empty, "w").close()
            done = run_report(empty, out)
            with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
                report = f.read()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("holds no usable records", report)




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
            section = report.split("### Figure 7")[1].split("\n#")[0]
            rows = [line for line in section.splitlines() if line.startswith("| ResNet-18")]
            self.assertEqual(len(rows), 6, section)
            self.assertIn("| cuda-graph | 0.50 |", section)
            self.assertIn("| cuda-graph fp16 channels_last | 0.25 |", section)
            self.assertTrue(rows[-1].rstrip(" |").endswith("4.00x") or "4.00x" in section, section)
            pngs = [n for n in os.listdir(out) if n.endswith(".png") and "fig7" in n]
            self.assertEqual(len(pngs), 1, os.listdir(out))

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


class OlderSchemaTest(unittest.TestCase):
    def test_records_of_another_schema_are_skipped_by_line(self):
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "old.jsonl")
            with open(path, "w") as f:
                f.write(json.dumps({"schema_version": 0, "binary": "resnet_single"}) + "\n")
                f.write('{"binary": "resnet_single", "model": \n')
            done = run_report(path, out)
            self.assertEqual(done.returncode, 0, done.stderr)
            lines = done.stderr.splitlines()
            self.assertEqual(len(lines), 2, done.stderr)
            self.assertTrue(lines[0].startswith("report: line 1: schema_version 0"), lines)
            self.assertTrue(lines[1].startswith("report: line 2: not JSON"), lines)


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
