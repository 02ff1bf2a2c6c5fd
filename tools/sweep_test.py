#!/usr/bin/env python3
"""Tests for tools/sweep.py's plan (nothing is run): which runs are planned and
which are skipped, and why, with 0, 2 and 4 GPUs; --only; --dry_run; the C++
against Python comparisons (--peers) and what happens when their Python or
C++ binary is missing; bad flags. And tools/resnet_multi_sweep.py's flags and
where it saves models.

  python3 tools/sweep_test.py        # or: bazel test //tools:sweep_test
"""
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep  # noqa: E402

TOOLS = os.path.dirname(os.path.abspath(sweep.__file__))
MULTI_SWEEP = os.path.join(TOOLS, "resnet_multi_sweep.py")
PYTHON = sys.executable  # a Python that exists, standing in for .venv's
NO_PYTHON = "/nonexistent/bin/python"
PEERS = ["peer train_step resnet18 batch 64", "peer infer resnet18 batch 32",
         "peer roberta_infer roberta-small batch 8 seq 64"]


def planned(*argv):
    args = sweep.parse_args(list(argv))
    runs, skipped = sweep.select(*sweep.plan(args, args.gpus), args.only)
    return args, {r.name: r for r in runs}, dict(skipped)


class NoGpuTest(unittest.TestCase):
    def setUp(self):
        self.args, self.runs, self.skipped = planned("--gpus=0", "--models_dir=/tmp/m", "--results=r.jsonl",
                                                     f"--peer_python={PYTHON}", f"--hf_python={NO_PYTHON}")

    def test_quick_by_default(self):
        self.assertTrue(self.args.quick)
        self.assertEqual(self.args.depths, [18, 50])
        self.assertEqual(self.args.roberta_models, ["roberta-small", "roberta-base"])

    def test_planned_runs(self):
        for name in ["resnet_single 18 fp32,mixed batch 64", "resnet_single 50 fp32,mixed batch 64",
                     "resnet_dp 18 x1 fp32 batch 128", "resnet_dp 50 x2 mixed batch 128",
                     "resnet_dp 18 x2 fp32 batch 64",  # 512 against 1024 on the most devices
                     "resnet_ddp 18 x2 mixed batch 64", "resnet_ddp 50 x2 fp32 batch 128",
                     "roberta_train roberta-base x2 fp32 batch 2",
                     "resnet_cpu_infer 50 int8-torchscript", "roberta_train roberta-base x2 mixed batch 4",
                     "roberta_train roberta-small x2 fp32 batch 8", "roberta_infer roberta-small cpu quantize"]:
            self.assertIn(name, self.runs)
        self.assertFalse([n for n in self.runs if "34" in n.split()[1] or "roberta-large" in n or " x4 " in n])
        self.assertFalse([n for n in self.runs if n.startswith("resnet_gpu_script") or " cuda " in n])
        for name in ["resnet_ddp 50 x2 mixed batch 128", "roberta_train roberta-base x2 mixed batch 8"]:
            self.assertNotIn(name, self.runs)  # --quick: the other batch sizes in fp32 only
        self.assertEqual(len(self.runs), 50 + 2)  # the grid, and the two ResNet comparisons with Python

    def test_skipped_with_reasons(self):
        cpu_only = "no GPU here: on the CPU only 1 and 2 devices run"
        self.assertEqual(self.skipped["resnet_dp 18 x4 fp32 batch 128"], cpu_only)
        self.assertEqual(self.skipped["resnet_ddp 50 x4 mixed batch 64"], cpu_only)
        self.assertEqual(self.skipped["roberta_train roberta-small x4 fp32 batch 4"], cpu_only)
        self.assertTrue(self.skipped["resnet_gpu_script 18"].startswith("no GPU here"))
        self.assertEqual(self.skipped["roberta_infer roberta-base cuda script"], "no GPU here")
        self.assertEqual(len(self.skipped), 18 + 1)  # and the RoBERTa comparison: no Python with transformers

    def test_budgets_and_paths(self):
        cmd = self.runs["resnet_ddp 50 x2 fp32 batch 64"].cmd
        self.assertEqual(cmd[1:4], ["50", "2", "0"])
        for flag in ["--epochs=2", "--max_steps=3", "--batch_size=64", "--results=r.jsonl", "--models_dir="]:
            self.assertIn(flag, cmd)
        infer = self.runs["resnet_cpu_infer 18 int8"]
        self.assertIn("--model=/tmp/m/Resnet-18-1gpu.pth", infer.cmd)
        self.assertEqual(infer.needs, "/tmp/m/Resnet-18-1gpu.pth")
        self.assertIn("--models_dir=/tmp/m", self.runs["resnet_single 18 fp32,mixed batch 64"].cmd)
        self.assertIn("--save_dir=/tmp/m/roberta-small", self.runs["roberta_train roberta-small x1 fp32 batch 4"].cmd)
        self.assertIn("--save_dir=", self.runs["roberta_train roberta-small x2 fp32 batch 4"].cmd)
        self.assertIn("--model_path=/tmp/m/roberta-base", self.runs["roberta_infer roberta-base cpu script"].cmd)

    def test_peers_after_the_grid_by_default(self):
        self.assertTrue(self.args.peers)
        self.assertEqual(list(self.runs)[-2:], PEERS[:2])
        train = self.runs[PEERS[0]]
        self.assertEqual(train.cmd, [PYTHON, os.path.join(TOOLS, "train_step_report.py"), "--depth", "18", "--batch",
                                     "64", "--rounds", "1", f"--binary={train.needs}", "--results=r.jsonl"])
        self.assertTrue(train.needs.endswith("/resnet/benchmarks/train_step_benchmark"), train.needs)
        self.assertEqual(train.hint, "bazel build //resnet/benchmarks:train_step_benchmark")
        infer = self.runs[PEERS[1]]
        self.assertEqual(infer.cmd[1:8], [os.path.join(TOOLS, "infer_report.py"), "--depth", "18", "--batch", "32",
                                          "--rounds", "1"])
        self.assertIn("--results=r.jsonl", infer.cmd)
        self.assertTrue(infer.needs.endswith("/resnet/benchmarks/resnet_infer_benchmark"), infer.needs)
        self.assertEqual(self.skipped[PEERS[2]],
                         f"no Python at {NO_PYTHON} (tools/setup.sh --peer, or give --hf_python)")

    def test_roberta_peer_with_transformers(self):
        _, runs, skipped = planned("--gpus=0", "--bin_dir=/b", "--results=r.jsonl", f"--peer_python={NO_PYTHON}",
                                   f"--hf_python={PYTHON}", "--only=peer")
        self.assertEqual(list(runs), PEERS[2:])
        self.assertEqual(runs[PEERS[2]].cmd, [
            PYTHON, os.path.join(TOOLS, "roberta_infer_report.py"), "--model", "roberta-small", "--batch", "8",
            "--seq", "64", "--rounds", "1", "--batches", "2", "--python", PYTHON, "--bin=/b/roberta/roberta_infer",
            "--results=r.jsonl"])
        self.assertEqual(runs[PEERS[2]].needs, "/b/roberta/roberta_infer")
        self.assertEqual(skipped, {name: f"no Python at {NO_PYTHON} (tools/setup.sh, or give --peer_python)"
                                   for name in PEERS[:2]})

    def test_no_peers(self):
        _, runs, skipped = planned("--gpus=0", "--no-peers", f"--peer_python={PYTHON}", f"--hf_python={PYTHON}")
        self.assertFalse([n for n in list(runs) + list(skipped) if n.startswith("peer")])
        self.assertEqual(len(runs), 50)

    def test_missing_binary_is_skipped_with_its_build_command(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = sweep.main(["--gpus=0", "--only=peer", f"--bin_dir={tmp}/bin", f"--models_dir={tmp}/m",
                                 f"--results={tmp}/r.jsonl", "--no_report", f"--peer_python={PYTHON}",
                                 f"--hf_python={PYTHON}"])
        text = out.getvalue()
        self.assertEqual(rc, 0, text)
        self.assertIn("sweep: 0 GPUs, quick budgets; 3 runs, 0 configurations skipped", text)
        self.assertIn(f"    skipped: {tmp}/bin/resnet/benchmarks/train_step_benchmark is missing "
                      "(bazel build //resnet/benchmarks:train_step_benchmark)", text)
        self.assertIn(f"    skipped: {tmp}/bin/roberta/roberta_infer is missing (bazel build //roberta:roberta_infer)",
                      text)
        self.assertIn("0 of 3 runs succeeded, 0 failed, 3 skipped for a missing model or binary", text)

    def test_only_filters_runs_and_skips(self):
        _, runs, skipped = planned("--gpus=0", "--only=^roberta_infer roberta-small")
        self.assertEqual(sorted(runs), ["roberta_infer roberta-small cpu eager",
                                        "roberta_infer roberta-small cpu quantize",
                                        "roberta_infer roberta-small cpu quantize-script",
                                        "roberta_infer roberta-small cpu script"])
        self.assertEqual(sorted(skipped), ["roberta_infer roberta-small cuda eager",
                                           "roberta_infer roberta-small cuda script"])

    def test_dry_run_prints_the_plan(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(sweep.main(["--gpus=0", "--dry_run", "--only=resnet_single"]), 0)
        text = out.getvalue()
        self.assertIn("sweep: 0 GPUs, quick budgets; 2 runs, 0 configurations skipped", text)
        self.assertIn("[2/2] resnet_single 50 fp32,mixed batch 64", text)


class FlagsTest(unittest.TestCase):
    def usage_error(self, argv):
        """The error line with which sweep.parse_args(argv) exits 2."""
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as exit:
            sweep.parse_args(argv)
        self.assertEqual(exit.exception.code, 2, err.getvalue())
        return err.getvalue().splitlines()[-1]

    def test_bad_depths_and_gpus_are_usage_errors(self):
        self.assertTrue(self.usage_error(["--gpus=0", "--depths=18,x"]).endswith(
            "error: --depths 18,x: not comma-separated numbers (18,34,50)"))
        self.assertTrue(self.usage_error(["--gpus=-1"]).endswith("error: --gpus -1: must be 0 or more"))
        done = subprocess.run([sys.executable, MULTI_SWEEP, "--dry_run", "--depths", "18,x"], capture_output=True,
                              text=True)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertTrue(done.stderr.endswith("error: --depths 18,x: not comma-separated numbers (18,34,50)\n"),
                        done.stderr)

    def test_resnet_multi_sweep_saves_models_apart_from_the_users(self):
        done = subprocess.run([sys.executable, MULTI_SWEEP, "--dry_run", "--quick"], capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        runs = [line for line in done.stdout.splitlines() if line.startswith("[")]
        self.assertTrue(runs, done.stdout)
        for line in runs:  # the models of the other batch size are not saved
            self.assertTrue(line.endswith((" --models_dir=models/sweep", " --models_dir=")), line)


class GpuTest(unittest.TestCase):
    def test_four_gpus_run_the_whole_grid(self):
        args, runs, skipped = planned("--gpus=4")
        self.assertFalse(args.quick)
        self.assertEqual(skipped, {})
        for name in ["resnet_single 34 fp32,mixed batch 512", "resnet_dp 50 x4 mixed batch 1024",
                     "resnet_dp 18 x4 fp32 batch 512", "resnet_ddp 34 x4 fp32 batch 1024",
                     "resnet_gpu_script 50", "roberta_train roberta-large x4 mixed batch 64",
                     "roberta_infer roberta-large cuda script"]:
            self.assertIn(name, runs)
        self.assertNotIn("roberta_infer roberta-small cuda quantize", runs)
        self.assertIn("--epochs=20", runs["resnet_ddp 50 x4 mixed batch 512"].cmd)
        self.assertFalse([n for n in runs if n.startswith("peer")])  # --peers: only with --quick on a CPU host

    def test_peers_on_request(self):
        args, runs, _ = planned("--gpus=4", "--peers", f"--peer_python={PYTHON}", f"--hf_python={PYTHON}",
                                "--only=peer")
        self.assertTrue(args.peers)
        self.assertEqual(list(runs), PEERS)

    def test_quick_with_gpus_has_no_peers(self):
        args, runs, _ = planned("--gpus=2", "--quick", f"--peer_python={PYTHON}", f"--hf_python={PYTHON}")
        self.assertFalse(args.peers)
        self.assertFalse([n for n in runs if n.startswith("peer")])

    def test_two_gpus_skip_four(self):
        _, runs, skipped = planned("--gpus=2")
        self.assertIn("resnet_ddp 50 x2 fp32 batch 512", runs)
        self.assertIn("resnet_dp 50 x2 fp32 batch 512", runs)  # the other batch size, on 2
        self.assertEqual(skipped["resnet_dp 50 x4 fp32 batch 1024"], "needs more GPUs than the 2 here")
        self.assertEqual(skipped["roberta_train roberta-base x4 mixed batch 32"], "needs more GPUs than the 2 here")
        self.assertEqual(len(skipped), 3 * 2 * 2 + 3 * 2)


if __name__ == "__main__":
    unittest.main()
