#!/usr/bin/env python3
"""Python PyTorch DistributedDataParallel peer of //resnet:resnet_ddp: starts
--world processes (on the CPU with Gloo, or one GPU each with NCCL), each
trains the same ResNet (same seed) wrapped in DDP on its own fixed random batch
(forward, cross-entropy, backward, SGD lr 0.1 momentum 0.9 weight decay 5e-4 in
torch.optim's --implementation, grads set to None; autocast and a GradScaler with --precision fp16, as
tools/peer/resnet_train_step.py), and rank 0 times each step after the warm-up
(a device sync ends each step on a GPU) and prints one JSON object.

With --paired (one process) it measures PyTorch's own DDP overhead as
//resnet/benchmarks:reducer_benchmark's DdpOverhead measures resnet_ddp's:
the plain step and the same step of a DDP-wrapped copy of the model (world
size 1), taking turns in this one process, and prints both.

torch.nn.SyncBatchNorm runs only on GPUs (where --sync_batchnorm uses it), so
on the CPU --sync_batchnorm uses a small version here with the algorithm of //common/distributed:sync_batchnorm:
per-channel sums all-reduced in forward, sum(dy) and sum(dy * xhat) in backward.

  .venv/bin/python tools/peer/resnet_ddp_step.py --depth 18 --batch 32 --world 2 --steps 10
  python3 tools/peer/resnet_ddp_step.py --device cuda --world 1 --batch 512 --precision fp16 --steps 200
  .venv/bin/python tools/peer/resnet_ddp_step.py --world 1 --paired --batch 32 --steps 100
"""
import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backend_settings import backend_settings  # noqa: E402
from resnet_train_step import make_model  # noqa: E402
from train_step_timing import (IMPLEMENTATIONS, TrainStep, optimizer_implementation,  # noqa: E402
                               time_paired_steps, time_train_steps)


def per_channel(values):
    return values.view(1, -1, 1, 1)


class SyncBatchNormFunction(torch.autograd.Function):
    """y = (x - mean) * invstd * weight + bias with the statistics of all ranks' batches."""

    @staticmethod
    def forward(ctx, x, weight, bias, bn):
        count = torch.tensor([x.numel() / x.size(1)], dtype=torch.float64)
        local_mean = x.mean((0, 2, 3))
        # Centre on the local mean before squaring; combine the sums in float64.
        m2 = (x - per_channel(local_mean)).square().sum((0, 2, 3)).double()
        local_sum = local_mean.double() * count
        stats = torch.cat([local_sum, m2 + local_sum * local_mean.double(), count])
        dist.all_reduce(stats)
        channels = x.size(1)
        count = stats[-1]
        mean = stats[:channels] / count
        var = (stats[channels:2 * channels] / count - mean * mean).clamp_min(0)
        with torch.no_grad():
            bn.running_mean.mul_(1 - bn.momentum).add_(mean.float() * bn.momentum)
            bn.running_var.mul_(1 - bn.momentum).add_((var * count / (count - 1)).float() * bn.momentum)
            bn.num_batches_tracked.add_(1)
        mean, invstd = mean.float(), (var + bn.eps).rsqrt().float()
        ctx.save_for_backward(x, mean, invstd, weight)
        ctx.count = count.item()
        return (x - per_channel(mean)) * per_channel(invstd * weight) + per_channel(bias)

    @staticmethod
    def backward(ctx, dy):
        x, mean, invstd, weight = ctx.saved_tensors
        xhat = (x - per_channel(mean)) * per_channel(invstd)
        sum_dy, sum_dy_xhat = dy.sum((0, 2, 3)), (dy * xhat).sum((0, 2, 3))
        sums = torch.cat([sum_dy, sum_dy_xhat])
        dist.all_reduce(sums)  # weight and bias gradients stay local: DDP averages them
        mean_dy, mean_dy_xhat = (sums / ctx.count).chunk(2)
        dx = (dy - per_channel(mean_dy) - xhat * per_channel(mean_dy_xhat)) * per_channel(invstd * weight)
        return dx, sum_dy_xhat, sum_dy, None


class CpuSyncBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x):
        if not self.training:
            return super().forward(x)
        return SyncBatchNormFunction.apply(x, self.weight, self.bias, self)


def convert_sync_batchnorm(module):
    """Replaces every BatchNorm2d under module with CpuSyncBatchNorm2d (same state)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            sync = CpuSyncBatchNorm2d(child.num_features, child.eps, child.momentum)
            sync.load_state_dict(child.state_dict())
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module


def worker(rank, args, port):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    torch.backends.cudnn.benchmark = True  # as resnet_train_step.py and the C++ binaries
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=args.world,
                            timeout=datetime.timedelta(seconds=300))
    torch.manual_seed(0)  # the same weights on every rank
    model, _ = make_model(args.depth)
    if args.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model) if cuda else convert_sync_batchnorm(model)
    model = DistributedDataParallel(model.to(device), device_ids=[rank] if cuda else None,
                                    bucket_cap_mb=args.bucket_cap_mb)
    generator = torch.Generator().manual_seed(1 + rank)  # a different batch per rank
    images = torch.randn(args.batch, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(10, (args.batch,), generator=generator).to(device)

    implementation, implementation_name = optimizer_implementation(args.implementation, device)

    def sgd(net):
        return torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, **implementation)

    def train_step(net):
        return TrainStep(lambda x, y: F.cross_entropy(net(x), y), [(images, labels)], sgd(net), args.precision,
                         device)

    if args.paired:
        torch.manual_seed(0)
        plain, _ = make_model(args.depth)
        plain_step, ddp_step = train_step(plain.to(device)), train_step(model)
        single, ddp = time_paired_steps(plain_step, ddp_step, args.warmup, args.steps)
        print(json.dumps({
            "impl": "python-ddp-paired", "depth": args.depth, "batch": args.batch, "world": 1,
            "device": args.device, "precision": args.precision, "backend": "nccl" if cuda else "gloo",
            "bucket_cap_mb": args.bucket_cap_mb, "threads": args.threads, "torch": torch.__version__,
            "implementation": implementation_name, "single_step_seconds": single, "ddp_step_seconds": ddp,
            "single_skipped_steps": plain_step.skipped_steps, "ddp_skipped_steps": ddp_step.skipped_steps,
            "median_single_seconds": statistics.median(single), "median_ddp_seconds": statistics.median(ddp),
            "overhead_pct": (statistics.median(ddp) / statistics.median(single) - 1) * 100,
            "paired_overhead_pct": statistics.median(d / s - 1 for s, d in zip(single, ddp)) * 100,
            **backend_settings(),
        }), flush=True)
        dist.destroy_process_group()
        return

    times, skipped = time_train_steps(lambda x, y: F.cross_entropy(model(x), y), [(images, labels)], sgd(model),
                                      args.precision, device, args.warmup, args.steps)
    if rank == 0:
        print(json.dumps({
            "impl": "python-ddp", "depth": args.depth, "batch": args.batch, "world": args.world,
            "device": args.device, "precision": args.precision, "backend": "nccl" if cuda else "gloo",
            "bucket_cap_mb": args.bucket_cap_mb, "sync_batchnorm": args.sync_batchnorm, "threads": args.threads,
            "torch": torch.__version__, "implementation": implementation_name, "step_seconds": times,
            "skipped_steps": skipped,
            "median_step_seconds": statistics.median(times), **backend_settings(),
        }), flush=True)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=18, choices=[18, 34, 50])
    parser.add_argument("--batch", type=int, default=32, help="samples per process and step")
    parser.add_argument("--world", type=int, default=2, help="processes")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bucket_cap_mb", type=float, default=25.0)
    parser.add_argument("--sync_batchnorm", action=argparse.BooleanOptionalAction, default=None,
                        help="synchronise BatchNorm statistics across processes (default: on when world > 1)")
    parser.add_argument("--threads", type=int, help="intra-op threads per process (default: cores / world)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: one GPU a process, NCCL")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--implementation", default="default", choices=IMPLEMENTATIONS,
                        help="torch.optim.SGD's implementation (default: foreach on a GPU, a loop on the CPU)")
    parser.add_argument("--paired", action="store_true",
                        help="with --world 1: the plain step and the DDP step taking turns; prints both")
    args = parser.parse_args()
    if args.paired and args.world != 1:
        parser.error("--paired compares DDP at world size 1 with the plain step: give --world 1")
    if args.device == "cuda" and args.world > torch.cuda.device_count():
        parser.error(f"--world {args.world} needs as many GPUs; {torch.cuda.device_count()} here")
    if args.world < 1 or args.batch < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--world, --batch and --steps must be positive, --warmup not negative")
    if args.sync_batchnorm is None:
        args.sync_batchnorm = args.world > 1
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // args.world)

    try:
        mp.spawn(worker, args=(args, free_port()), nprocs=args.world, join=True)
    except Exception as error:  # a rank failed: its traceback's last line says why
        lines = str(error).strip().splitlines() or [type(error).__name__]
        sys.exit(f"resnet_ddp_step: {lines[-1]}")


if __name__ == "__main__":
    main()
