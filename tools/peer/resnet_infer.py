#!/usr/bin/env python3
"""Python PyTorch peer of //resnet/benchmarks:resnet_infer_benchmark and
resnet_gpu_script: times ResNet inference for the same variants and prints one
JSON object per variant with the median ms per batch.

On the CPU: eager, torchscript-frozen (traced at 32x32, frozen, optimized for
inference), int8 (static post-training quantization, x86 engine, FX graph
mode) and int8-torchscript (that model traced and frozen). On a GPU (cuDNN
benchmark on, a device sync after every batch): eager, torchscript-frozen,
cuda-graph (the eager model captured once on a static input and replayed) and
cuda-graph-frozen (the frozen module captured the same way), in fp32 or in
fp16 with channels_last (--precision).

  .venv/bin/python tools/peer/resnet_infer.py --depth 50 --batch 32
  python3 tools/peer/resnet_infer.py --device cuda --depth 18 --precision fp16
"""
import argparse
import collections
import json
import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backend_settings import backend_settings  # noqa: E402
from resnet_train_step import make_model  # noqa: E402  (torchvision's, or the same architecture)


CPU_VARIANTS = "eager,torchscript-frozen,int8,int8-torchscript"
CUDA_VARIANTS = "eager,torchscript-frozen,cuda-graph,cuda-graph-frozen"
ONLY_ON = {"int8": "cpu", "int8-torchscript": "cpu", "cuda-graph": "cuda", "cuda-graph-frozen": "cuda"}


def time_batches(fn, x, iters, warmup):
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        sync()
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            fn(x)
            sync()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def cuda_graph(model, example, warmup=3):
    """Captures one call of `model` on a static copy of `example`; the returned
    function copies its input in and replays (the output is overwritten each time)."""
    static_input = example.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode():
        with torch.cuda.stream(side):
            for _ in range(warmup):
                model(static_input)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = model(static_input)

    def run(x):
        static_input.copy_(x, non_blocking=True)
        graph.replay()
        return static_output
    return run


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


def graph_operators(graph):
    """'aten::conv2d x20, aten::relu x17, ...': the graph's operators, most frequent first, constants left out."""
    counts = collections.Counter(node.kind() for node in graph.nodes() if node.kind() != "prim::Constant")
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(counts.items(), key=lambda item: -item[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=18, choices=[18, 34, 50])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", help=f"comma-separated (default: {CPU_VARIANTS} on the CPU, {CUDA_VARIANTS} on a GPU)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16"],
                        help="fp16: half weights and inputs in channels_last (GPU only)")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("resnet_infer.py: --device cuda, but torch sees no GPU")
    if args.precision == "fp16" and not cuda:
        sys.exit("resnet_infer.py: --precision fp16 needs --device cuda")
    variants = (args.variants or (CUDA_VARIANTS if cuda else CPU_VARIANTS)).split(",")
    if cuda:
        torch.backends.cudnn.benchmark = True  # as DESIGN.md's peer numbers

    torch.manual_seed(0)
    model, source = make_model(args.depth)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as the C++ benchmark
        model.train()
        for _ in range(3):
            model(torch.randn(32, 3, 32, 32))
    model.eval()
    dtype = torch.half if args.precision == "fp16" else torch.float
    memory_format = torch.channels_last if args.precision == "fp16" else torch.contiguous_format
    model = model.to(args.device, dtype).to(memory_format=memory_format)

    def images():
        return torch.randn(args.batch, 3, 32, 32, device=args.device).to(dtype).contiguous(memory_format=memory_format)

    x = images()
    for variant in variants:
        if ONLY_ON.get(variant, args.device) != args.device:
            sys.exit(f"resnet_infer.py: variant {variant} runs with --device {ONLY_ON[variant]} only")
        if variant == "eager":
            fn = model
        elif variant in ("torchscript-frozen", "cuda-graph-frozen"):
            with torch.no_grad():
                traced = torch.jit.trace(model, images())
                fn = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
            if variant == "cuda-graph-frozen":
                fn = cuda_graph(fn, images())
        elif variant == "cuda-graph":
            fn = cuda_graph(model, images())
        elif variant in ("int8", "int8-torchscript"):
            fn = quantize_int8(model, [torch.randn(32, 3, 32, 32) for _ in range(4)])
            if variant == "int8-torchscript":
                with torch.no_grad():
                    fn = torch.jit.freeze(torch.jit.trace(fn, torch.randn(args.batch, 3, 32, 32)).eval())
        else:
            sys.exit(f"resnet_infer.py: unknown variant {variant}")
        median = time_batches(fn, x, args.iters, args.warmup)
        extra = {}
        if variant == "torchscript-frozen":  # what freezing and optimize_for_inference left, as resnet_gpu_script prints it
            extra["graph_operators"] = graph_operators(fn.graph)
        print(json.dumps({"peer": "python", "variant": variant, "model": f"resnet{args.depth}",
                          "model_source": source, "device": args.device, "precision": args.precision,
                          "batch": args.batch, "median_ms": median * 1e3,
                          "images_per_second": args.batch / median, "torch_version": torch.__version__,
                          "threads": torch.get_num_threads(),
                          "device_name": torch.cuda.get_device_name() if cuda else "cpu", **backend_settings(),
                          **extra}), flush=True)


if __name__ == "__main__":
    main()
