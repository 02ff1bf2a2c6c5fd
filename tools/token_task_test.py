#!/usr/bin/env python3
"""Tests for tools/make_token_task.py: the study's file format, the signal and
distractor tokens each class promises, reproducibility, and bad arguments.

  python3 tools/token_task_test.py        # or: bazel test //tools:token_task_test
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_token_task as task  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_token_task.py")


def group(token):
    """The class whose signal group holds `token`, or None for a noise id."""
    offset = token - 100
    if 0 <= offset < 10 * task.NUM_CLASSES and offset % 10 < 5:
        return offset // 10
    return None


class TokenTaskTest(unittest.TestCase):
    def test_rows_hold_their_class_signal_and_at_most_one_distractor(self):
        ids, labels = task.make_rows(2000, seed=7)
        self.assertEqual(len(ids), 2000)
        self.assertEqual(sorted(set(labels)), [0, 1, 2, 3])
        with_distractor = 0
        for row, label in zip(ids, labels):
            self.assertEqual((row[0], row[-1]), (task.BOS, task.EOS))
            self.assertTrue(18 <= len(row) <= 32, len(row))
            groups = [group(t) for t in row[1:-1]]
            self.assertEqual(groups.count(label), task.SIGNALS_PER_ROW)
            others = [g for g in groups if g is not None and g != label]
            self.assertLessEqual(len(others), 1)
            with_distractor += len(others)
            self.assertTrue(all(1000 <= t <= 4999 for t, g in zip(row[1:-1], groups) if g is None))
        self.assertAlmostEqual(with_distractor / 2000, task.DISTRACTOR_RATE, delta=0.05)

    def test_same_seed_same_rows(self):
        self.assertEqual(task.make_rows(50, seed=3), task.make_rows(50, seed=3))
        self.assertNotEqual(task.make_rows(50, seed=3), task.make_rows(50, seed=4))

    def test_command_writes_the_study_format(self):
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, SCRIPT, "--out", out, "--train", "40", "--dev", "10"],
                           check=True, capture_output=True)
            for split, count in (("train", 40), ("dev", 10)):
                with open(os.path.join(out, f"{split}_ids.txt")) as f:
                    ids = json.load(f)
                with open(os.path.join(out, f"{split}_labels.txt")) as f:
                    labels = json.load(f)
                self.assertEqual((len(ids), len(labels)), (count, count))
            with open(os.path.join(out, "train_ids.txt")) as f, open(os.path.join(out, "dev_ids.txt")) as g:
                self.assertNotEqual(json.load(f)[:10], json.load(g))

    def test_bad_count_is_a_usage_error(self):
        with tempfile.TemporaryDirectory() as out:
            run = subprocess.run([sys.executable, SCRIPT, "--out", out, "--train", "0"], capture_output=True, text=True)
            self.assertEqual(run.returncode, 2)
            self.assertIn("--train and --dev must be at least 1", run.stderr)
            self.assertEqual(os.listdir(out), [])

    def test_out_naming_a_file_is_a_usage_error(self):
        with tempfile.NamedTemporaryFile() as existing:
            run = subprocess.run([sys.executable, SCRIPT, "--out", existing.name], capture_output=True, text=True)
            self.assertEqual(run.returncode, 2)
            self.assertIn("is a file, not a folder", run.stderr)
            self.assertNotIn("Traceback", run.stderr)


if __name__ == "__main__":
    unittest.main()
