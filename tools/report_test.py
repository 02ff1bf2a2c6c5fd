#!/usr/bin/env python3
"""Tests for tools/report.py: runs it on tools/testdata/report_results.jsonl
(hand-written records: resnet_single fp32/fp16 for ResNet-18 and -50,
resnet_dp and resnet_ddp on 2 GPUs, resnet_cpu_infer eager/int8, a repeated
configuration, a cut-short line, a record without precision and one from an
unknown binary) and checks the report's numbers, charts and skipped lines.

  python3 tools/report_test.py        # or: bazel test //tools:report_test
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = os.path.join(HERE, "report.py")
RESULTS = os.path.join(HERE, "testdata", "report_results.jsonl")
GPU = "gpu-01-nvidia-h100-80gb-hbm3-2.14.1-cifar10-"
CPU = "gpu-01-intel-r-xeon-r-platinum-8480-2.14.1-cifar10-"


def python_with_matplotlib():
    """This interpreter if it has matplotlib, else Debian's (python3-matplotlib)."""
    for python in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode == 0:
            return python
    raise RuntimeError("no python3 with matplotlib: apt-get install python3-matplotlib")


def run_report(results, out):
    return subprocess.run([python_with_matplotlib(), REPORT, results, "--out", out], capture_output=True, text=True)


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

    def row(self, figure, *cells):
        """The row of `figure`'s table that starts with `cells`."""
        section = self.report.split(f"### {figure}:")[1].split("\n#")[0]
        start = "| " + " | ".join(cells) + " |"
        rows = [line for line in section.splitlines() if line.startswith(start)]
        self.assertEqual(len(rows), 1, f"{figure}: rows starting {start!r}:\n{self.report}")
        return [cell.strip() for cell in rows[0].strip("|").split("|")]

    def test_runs_and_names_the_records_used(self):
        self.assertEqual(self.done.returncode, 0, self.done.stderr)
        self.assertIn("12 records used, 3 lines skipped", self.report)

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
        self.assertEqual(self.row("Figure 3", "ResNet-18", "1 device", "fp32", "256")[4], "11.05")
        self.assertEqual(self.row("Figure 3", "ResNet-18", "1 device", "fp32", "512")[4], "9.84")

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

    def test_captions_name_machine_libtorch_and_date(self):
        self.assertIn("*NVIDIA H100 80GB HBM3 (gpu-01), LibTorch 2.14.1, 2026-11-20, cifar10.", self.report)
        self.assertIn("*Intel(R) Xeon(R) Platinum 8480+ (gpu-01), LibTorch 2.14.1, 2026-11-21, cifar10.", self.report)

    def test_charts_are_png_files(self):
        for name in (GPU + "fig1-resnet-train-speedup.png", GPU + "fig3-resnet-batch-size.png",
                     CPU + "fig5-resnet-cpu-infer.png"):
            self.assertIn(f"]({name})", self.report)
            with open(os.path.join(self.out, name), "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, name)
        pngs = sorted(n for n in os.listdir(self.out) if n.endswith(".png"))
        self.assertEqual(len(pngs), 3, pngs)

    def test_figures_without_records_are_listed_not_drawn(self):
        missing = self.report.split("## Not in this results file")[1].split("##")[0]
        for name in ("Figure 2", "Figure 4", "Figure 6", "Figure 7", "Figure 8", "Ours"):
            self.assertIn(f"- {name}:", missing)
        self.assertNotIn("Figure 1", missing)

    def test_skipped_lines_reported_with_line_and_reason(self):
        self.assertIn("| 6 | not JSON (Unterminated string", self.report)
        self.assertIn("| 8 | resnet_dp record lacks precision |", self.report)
        self.assertIn("| 13 | unknown binary 'mnist_train' |", self.report)
        self.assertEqual([line for line in self.done.stderr.splitlines()],
                         ["report: line 6: not JSON (Unterminated string starting at, column 69)",
                          "report: line 8: resnet_dp record lacks precision",
                          "report: line 13: unknown binary 'mnist_train'"])

    def test_missing_file_is_one_line_and_exit_1(self):
        with tempfile.TemporaryDirectory() as out:
            done = run_report(os.path.join(out, "absent.jsonl"), out)
        self.assertEqual(done.returncode, 1)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertRegex(done.stderr, r"^report: cannot read .*absent\.jsonl: No such file or directory\n$")

    def test_empty_file_says_no_records(self):
        with tempfile.TemporaryDirectory() as out:
            empty = os.path.join(out, "empty.jsonl")
            open(empty, "w").close()
            done = run_report(empty, out)
            with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
                report = f.read()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("holds no usable records", report)


if __name__ == "__main__":
    unittest.main()
