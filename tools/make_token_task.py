#!/usr/bin/env python3
"""Writes a learnable 4-class token task in the study's format
(<prefix>_ids.txt, <prefix>_labels.txt: JSON lists) for train and dev, so that
a RoBERTa can be trained here without a downloaded checkpoint or data set, and
int8 can be compared with fp32 on a trained model.

Each sequence is <s>, 16 to 30 noise ids (1000-4999), </s>. A sequence of class
c holds 3 tokens of c's signal group (ids 100+10c .. 104+10c) at random places;
30 % of sequences also hold one token of another class's group, a distractor,
so that the task is not solved by the presence of a signal id alone.

  python3 tools/make_token_task.py --out data/token-task --train 8000 --dev 2000
  bazel run //roberta:roberta_train -- --model_name roberta-base --train_data data/token-task/train \\
      --dev_data data/token-task/dev --max_len 32 --optimizer adamw --lr 1e-4 ...
"""
import argparse
import json
import os
import random

NUM_CLASSES = 4
SIGNALS_PER_ROW = 3
DISTRACTOR_RATE = 0.3
BOS, EOS = 0, 2


def signal_id(rng, label):
    return 100 + 10 * label + rng.randrange(5)


def make_rows(count, seed):
    """Returns (ids, labels): `count` sequences and their classes."""
    rng = random.Random(seed)
    ids, labels = [], []
    for _ in range(count):
        label = rng.randrange(NUM_CLASSES)
        body = [rng.randint(1000, 4999) for _ in range(rng.randint(16, 30))]
        places = rng.sample(range(len(body)), SIGNALS_PER_ROW + 1)
        for place in places[:SIGNALS_PER_ROW]:
            body[place] = signal_id(rng, label)
        if rng.random() < DISTRACTOR_RATE:
            body[places[-1]] = signal_id(rng, (label + rng.randint(1, NUM_CLASSES - 1)) % NUM_CLASSES)
        ids.append([BOS] + body + [EOS])
        labels.append(label)
    return ids, labels


def write_split(prefix, ids, labels):
    for suffix, value in (("_ids.txt", ids), ("_labels.txt", labels)):
        with open(prefix + suffix, "w") as f:
            json.dump(value, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for train_* and dev_* files")
    parser.add_argument("--train", type=int, default=8000, help="training sequences")
    parser.add_argument("--dev", type=int, default=2000, help="dev sequences")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.train < 1 or args.dev < 1:
        parser.error("--train and --dev must be at least 1")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} is a file, not a folder")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        parser.error(f"cannot make --out {args.out}: {e.strerror}")
    write_split(os.path.join(args.out, "train"), *make_rows(args.train, args.seed))
    write_split(os.path.join(args.out, "dev"), *make_rows(args.dev, args.seed + 1))
    print(f"make_token_task: {args.train} train and {args.dev} dev sequences in {args.out}")


if __name__ == "__main__":
    main()
