#!/usr/bin/env python3
"""Python PyTorch peer of //resnet/benchmarks:resnet_infer_benchmark: times
ResNet inference on the CPU for the same variants — eager,
torchscript-frozen (traced at 32x32, frozen, optimized for inference), int8
(static post-training quantization, x86 engine, FX graph mode) and
int8-torchscript (that model traced and frozen) — and
prints one JSON object per variant with the median ms per batch.

  .venv/bin/python tools/peer/resnet_infer.py --depth 50 --batch 32
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet_train_step import make_model  # noqa: E402  (torchvision's, or the same architecture)


def time_batches(fn, x, iters, warmup):
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def quantize_int8(model, calibration):
    warnings.filterwarnings("ignore")
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), example_inputs=(calibration[0],))
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    return convert_fx(prepared)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=18, choices=[18, 34, 50])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", default="eager,torchscript-frozen,int8,int8-torchscript")
    args = parser.parse_args()

    torch.manual_seed(0)
    model, source = make_model(args.depth)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as the C++ benchmark
        model.train()
        for _ in range(3):
            model(torch.randn(32, 3, 32, 32))
    model.eval()
    x = torch.randn(args.batch, 3, 32, 32)
    for variant in args.variants.split(","):
        if variant == "eager":
            fn = model
        elif variant == "torchscript-frozen":
            with torch.no_grad():
                traced = torch.jit.trace(model, torch.randn(args.batch, 3, 32, 32))
                fn = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        elif variant in ("int8", "int8-torchscript"):
            fn = quantize_int8(model, [torch.randn(32, 3, 32, 32) for _ in range(4)])
            if variant == "int8-torchscript":
                with torch.no_grad():
                    fn = torch.jit.freeze(torch.jit.trace(fn, torch.randn(args.batch, 3, 32, 32)).eval())
        else:
            sys.exit(f"resnet_infer.py: unknown variant {variant}")
        median = time_batches(fn, x, args.iters, args.warmup)
        print(json.dumps({"peer": "python", "variant": variant, "model": f"resnet{args.depth}",
                          "model_source": source, "batch": args.batch, "median_ms": median * 1e3,
                          "images_per_second": args.batch / median, "torch_version": torch.__version__,
                          "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
