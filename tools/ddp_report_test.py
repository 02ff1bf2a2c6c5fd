#!/usr/bin/env python3
"""Tests for tools/ddp_report.py's report on rounds of figures made up here:
the overheads it prints (ratio of the medians, round by round, PyTorch's), the
verdict against the 3 % target, the hidden share of the all-reduce wait, the
Python / C++ ratio it prints and returns for the record, and the lines for
peers that failed or a benchmark that did not run. Running the binaries is
left to ddp_report itself (tools/gpu_check.sh's rounds stage).

  python3 tools/ddp_report_test.py   # or: bazel test //tools:ddp_report_test
"""
import argparse
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ddp_report  # noqa: E402

ARGS = argparse.Namespace(depth=18, precision="fp32", batch=32, rounds=3, steps=10, device="cpu")
PAIRS = [(overlap, bucket) for overlap in ("true", "false") for bucket in ("25", "1000")]


def record(step_seconds, wait_seconds=None):
    rec = {"step_seconds": {"median": step_seconds}, "device": "cpu", "libtorch_version": "2.13.0"}
    if wait_seconds is not None:
        rec["reducer"] = {"wait_seconds_per_step": wait_seconds, "buckets": 7, "bytes_per_step": 46.8e6}
    return rec


def python_ddp(step_seconds, world=1):
    return {"median_step_seconds": step_seconds, "torch": "2.13.0", "threads": 1, "implementation": "fused",
            "world": world}


def benchmark_run(overhead_pct):
    return {"run_name": "DdpOverhead/fp32/depth:18/batch:32/own_buckets:1", "iterations": 40,
            "single_ms": 100.0, "ddp_ms": 100.0 * (1 + overhead_pct / 100), "overhead_pct": overhead_pct,
            "paired_overhead_pct": overhead_pct}


def paired_peer(overhead_pct, skipped=0):
    return {"single_step_seconds": [0.1] * 20, "median_single_seconds": 0.1,
            "median_ddp_seconds": 0.1 * (1 + overhead_pct / 100), "overhead_pct": overhead_pct,
            "paired_overhead_pct": overhead_pct, "single_skipped_steps": skipped, "ddp_skipped_steps": skipped}


def build(single, ddp1, pairs=(), python=(), python_single=None, python_ddp1=None, in_process=(None, None)):
    """build_report on these step seconds per round; pairs: {(overlap, bucket): [(step, wait), ...]}."""
    records = {"single": [record(s) for s in single], "ddp1": [record(s) for s in ddp1]}
    for pair, rounds in dict(pairs).items():
        records[pair] = [record(s, w) for s, w in rounds]
    return ddp_report.build_report(
        ARGS, list(dict(pairs)), records, [python_ddp(s, world=2) for s in python],
        python_single if python_single is not None else [None] * len(single),
        python_ddp1 if python_ddp1 is not None else [None] * len(single), in_process, "Test CPU, 2 CPUs", 0.5)


def line(report, prefix):
    found = [text for text in report.splitlines() if text.startswith(prefix)]
    assert len(found) == 1, f"{len(found)} lines start with {prefix!r} in:\n{report}"
    return found[0]


class DdpReportTest(unittest.TestCase):
    def test_overhead_of_separate_processes(self):
        # Medians 0.100 and 0.104 s: +4.0 %; rounds +5.0, +4.0, -1.0: median +4.0.
        report, compared = build(single=[0.100, 0.100, 0.102], ddp1=[0.105, 0.104, 0.101],
                                 python_single=[0.200, 0.210, None],
                                 python_ddp1=[python_ddp(0.206), None, python_ddp(0.212)])
        self.assertIsNone(compared)  # no pairs: (c) was not measured
        text = line(report, "Separate processes: ")
        self.assertIn("+4.0 % (ratio of the medians)", text)
        self.assertIn("Round by round: +5.0, +4.0, -1.0 %, median +4.0 %", text)
        # PyTorch's: the medians of the rounds that ran, 0.205 and 0.209 s.
        self.assertIn(f"PyTorch's DDP: {(0.209 / 0.205 - 1) * 100:+.1f} %", text)
        self.assertIn("| resnet_single | 100.0 | 100.0, 100.0, 102.0 |", report)
        self.assertIn("| Python step (resnet_train_step.py) | 205.0 | 200.0, 210.0, - |", report)
        self.assertIn("Python torch 2.13.0", report)
        self.assertNotIn("## (b)", report)

    def test_python_overhead_not_measured_when_its_peers_failed(self):
        report, _ = build(single=[0.1], ddp1=[0.1])
        self.assertIn("PyTorch's DDP: not measured", line(report, "Separate processes: "))
        self.assertIn("Python torch ?", report)

    def test_verdict_against_the_target(self):
        for overhead, verdict in ((2.9, "met"), (3.0, "met"), (3.1, "NOT met"), (-1.0, "met")):
            report, _ = build(single=[0.1], ddp1=[0.1], in_process=(benchmark_run(overhead), paired_peer(2.5)))
            text = line(report, "Overhead: ")
            self.assertIn(f"Overhead: {overhead:+.1f} % step by step in one process (target: at most 3 %: {verdict}).",
                          text)
            self.assertIn("PyTorch's DDP measured the same way: +2.5 %.", text)

    def test_in_process_lines_without_benchmark_or_peer(self):
        report, _ = build(single=[0.1], ddp1=[0.1], in_process=(None, None))
        text = line(report, "Overhead: ")
        self.assertIn("not measured in one process", text)
        self.assertIn("PyTorch's DDP: not measured (its peer failed", text)
        report, _ = build(single=[0.1], ddp1=[0.1], in_process=(benchmark_run(1.0), paired_peer(1.0, skipped=2)))
        self.assertIn("Its GradScaler skipped 2 plain and 2 DDP steps", line(report, "Overhead: "))

    def test_gloo_rounds_hidden_share_and_python_ratio(self):
        pairs = {("true", "25"): [(0.110, 0.002), (0.120, 0.004), (0.100, 0.003)],
                 ("false", "25"): [(0.130, 0.012), (0.125, 0.010), (0.140, 0.011)],
                 ("true", "1000"): [(0.115, 0.005), (0.115, 0.005), (0.115, 0.005)],
                 ("false", "1000"): [(0.118, 0.0), (0.118, 0.0), (0.118, 0.0)]}
        report, compared = build(single=[0.1] * 3, ddp1=[0.1] * 3, pairs=pairs, python=[0.150, 0.165, 0.140])
        # Waits' medians 3 and 11 ms: 1 - 3/11 = 73 % hidden.
        self.assertEqual(line(report, "Hidden fraction at bucket_cap_mb=25:"),
                         "Hidden fraction at bucket_cap_mb=25: 73% (1 - exposed wait with overlap / without).")
        # No wait without overlap: nothing to hide, not a division by zero.
        self.assertIn("- (no exposed wait", line(report, "Hidden fraction at bucket_cap_mb=1000:"))
        self.assertIn("| true | 25 | 7 | 46.8 | 110.0 | 3.0 | 110.0, 120.0, 100.0 |", report)
        # (c): C++ median 0.110 s against Python's 0.150 s.
        self.assertEqual(compared, (0.110, 0.150))
        self.assertEqual(line(report, "Python / C++ step time:"), "Python / C++ step time: 1.36 (> 1: C++ faster).")
        self.assertRegex(report, re.escape("| Python DDP (resnet_ddp_step.py, fused SGD, 1 threads/process) | 150.0 |"))

    def test_helpers(self):
        self.assertAlmostEqual(ddp_report.overhead_pct(0.2, 0.21), 5.0)
        self.assertAlmostEqual(ddp_report.hidden_fraction(0.25, 1.0), 0.75)
        self.assertIsNone(ddp_report.hidden_fraction(0.1, 0.0))
        self.assertIsNone(ddp_report.median_or_none([None, None]))
        self.assertEqual(ddp_report.median_or_none([3, None, 1]), 2)


if __name__ == "__main__":
    unittest.main()
