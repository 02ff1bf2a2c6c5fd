#!/usr/bin/env python3
"""Python peer of //roberta:roberta_train: times training steps of
transformers' RoBERTa/XLM-R sequence classifier (random weights, 4 labels,
SDPA attention, dropout on) on random batches of full-length sequences, with
roberta_train's defaults: SGD lr 0.1 momentum 0.9 (the study's), or AdamW.
fp16 is autocast with a GradScaler (GPU only), bf16 autocast without one.
Prints one JSON line with the median step time and samples per second, to set
beside roberta_train's record (its step_seconds) from the same machine.

  python3 tools/peer/roberta_train_step.py --model xlm-roberta-base --batch 32 --seq 128 --precision fp16 --device cuda
"""
import argparse
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roberta_forward import NAMED_CONFIGS, build_model, make_batch  # noqa: E402
from backend_settings import backend_settings  # noqa: E402
from train_step_timing import IMPLEMENTATIONS, optimizer_implementation, percentile, time_train_steps  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="xlm-roberta-base", choices=sorted(NAMED_CONFIGS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    parser.add_argument("--implementation", default="default", choices=IMPLEMENTATIONS,
                        help="torch.optim's implementation (default: foreach on a GPU, a loop on the CPU)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    parser.add_argument("--trace", help="write a Chrome trace of more steps, after the timed ones, to this file")
    parser.add_argument("--trace_steps", type=int, default=5, help="how many steps --trace covers")
    args = parser.parse_args()
    if args.batch < 1 or args.seq < 2 or args.steps < 1:
        parser.error("--batch must be at least 1, --seq at least 2 and --steps at least 1")
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("roberta_train_step.py: --device cuda, but torch sees no GPU")
    if args.precision == "fp16" and not cuda:
        sys.exit("roberta_train_step.py: --precision fp16 needs --device cuda")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    model = build_model(args.model, seed=0).to(args.device).train()
    vocab = NAMED_CONFIGS[args.model][1]
    implementation, implementation_name = optimizer_implementation(args.implementation, args.device)
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, **implementation)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, **implementation)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        ids, mask = make_batch(args.batch, args.seq, vocab, random_lengths=False, generator=generator)
        labels = torch.randint(0, 4, (args.batch,), generator=generator)
        # No padding: no mask, as the C++ side (transformers would check an all-ones mask every step).
        batches.append((ids.to(args.device), None if bool(mask.all()) else mask.to(args.device),
                        labels.to(args.device)))
    times, skipped = time_train_steps(lambda ids, mask, labels: model(input_ids=ids, attention_mask=mask, labels=labels).loss,
                             batches, optimizer, args.precision, args.device, args.warmup, args.steps,
                             trace=args.trace, trace_steps=args.trace_steps)
    median = statistics.median(times)
    print(json.dumps({"peer": "python", "work": "roberta_train_step", "model": args.model, "batch": args.batch,
                      "seq": args.seq, "precision": args.precision, "optimizer": args.optimizer,
                      "implementation": implementation_name,
                      "device": args.device, "device_name": torch.cuda.get_device_name() if cuda else "cpu",
                      "steps": args.steps, "skipped_steps": skipped, "median_step_ms": median * 1e3,
                      "p10_step_ms": percentile(times, 0.1) * 1e3,
                      "p90_step_ms": percentile(times, 0.9) * 1e3, "samples_per_second": args.batch / median,
                      "torch_version": torch.__version__, "threads": torch.get_num_threads(), **backend_settings()}),
          flush=True)


if __name__ == "__main__":
    main()
