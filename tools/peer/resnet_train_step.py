#!/usr/bin/env python3
"""Python PyTorch peer of //resnet/benchmarks:train_step_benchmark: times one
ResNet training step (forward, cross-entropy, backward, SGD lr 0.1 momentum 0.9
weight decay 5e-4, grads set to None; --implementation picks torch.optim.SGD's
implementation: its default, which is foreach on a GPU and a loop over the
parameters on the CPU, or foreach, or fused) in eager mode on a fixed random batch, and prints one JSON object.

By default the batch stays on the device, as train_step_benchmark's does.
--from_host times the step as resnet_single's training loop takes it: the
batch comes from pinned host memory (its loader's) and is copied to the device
inside the step, and the step also counts the batch's correct predictions and
adds up its loss on the device.

The model is torchvision's resnetNN(num_classes=10) when torchvision imports,
otherwise an equivalent written here (same layers and parameter count), so
the peer runs with nothing but torch installed.

  .venv/bin/python tools/peer/resnet_train_step.py --depth 18 --batch 64 --steps 30
"""
import argparse
import json
import statistics

import torch
from torch import nn
import torch.nn.functional as F

from backend_settings import backend_settings
from train_step_timing import IMPLEMENTATIONS, optimizer_implementation, percentile, time_train_steps


class Block(nn.Module):
    def __init__(self, in_planes, planes, stride, bottleneck):
        super().__init__()
        self.bottleneck = bottleneck
        out_planes = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out_planes)
        else:
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_planes))

    def forward(self, x):
        # In-place ReLUs and residual add, as torchvision's blocks do.
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        if self.bottleneck:
            out = self.bn3(self.conv3(F.relu(out, inplace=True)))
        out += self.downsample(x) if self.downsample is not None else x
        return F.relu(out, inplace=True)


class ResNet(nn.Module):
    def __init__(self, depth, num_classes=10):
        super().__init__()
        blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}[depth]
        bottleneck = depth >= 50
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_planes = 64
        for i, (planes, count) in enumerate(zip([64, 128, 256, 512], blocks)):
            layer = []
            for b in range(count):
                layer.append(Block(in_planes, planes, (1 if i == 0 else 2) if b == 0 else 1, bottleneck))
                in_planes = planes * (4 if bottleneck else 1)
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make_model(depth):
    try:
        import torchvision
        return getattr(torchvision.models, f"resnet{depth}")(num_classes=10), "torchvision"
    except Exception:  # torchvision absent or built for another torch
        return ResNet(depth), "peer-defined"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=18, choices=[18, 34, 50])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--implementation", default="default", choices=IMPLEMENTATIONS)
    parser.add_argument("--from_host", action="store_true",
                        help="copy the batch from (pinned) host memory in each step and count its correct "
                             "predictions, as resnet_single's loop does")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--trace", help="write a Chrome trace of more steps, after the timed ones, to this file")
    parser.add_argument("--trace_steps", type=int, default=5, help="how many steps --trace covers")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    model, source = make_model(args.depth)
    model = model.to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    implementation, implementation_name = optimizer_implementation(args.implementation, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, **implementation)
    if args.from_host:
        images, labels = torch.randn(args.batch, 3, 32, 32), torch.randint(10, (args.batch,))
        if device.type == "cuda":
            images, labels = images.pin_memory(), labels.pin_memory()
        correct = torch.zeros((), dtype=torch.long, device=device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)

        def loss_fn(x, y):
            x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
            y = y.to(device, non_blocking=True)
            logits = model(x)
            correct.add_(logits.detach().argmax(1).eq(y).sum())
            loss = F.cross_entropy(logits, y)
            loss_sum.add_(loss.detach().double() * y.numel())  # as the C++ loop's running mean loss
            return loss
    else:
        images = torch.randn(args.batch, 3, 32, 32, device=device).contiguous(memory_format=fmt)
        labels = torch.randint(10, (args.batch,), device=device)

        def loss_fn(x, y):
            return F.cross_entropy(model(x), y)
    times, skipped = time_train_steps(loss_fn, [(images, labels)], optimizer, args.precision, device, args.warmup,
                                      args.steps, trace=args.trace, trace_steps=args.trace_steps)
    median = statistics.median(times)
    print(json.dumps({
        "peer": "python-eager", "model": f"resnet{args.depth}", "model_source": source,
        "batch": args.batch, "precision": args.precision, "channels_last": args.channels_last,
        "device": str(device), "torch_version": torch.__version__, "threads": torch.get_num_threads(),
        "implementation": implementation_name, "from_host": args.from_host, "steps": args.steps, "skipped_steps": skipped, "median_ms": median * 1e3,
        "p10_ms": percentile(times, 0.1) * 1e3, "p90_ms": percentile(times, 0.9) * 1e3,
        "images_per_second": args.batch / median,
        "parameters": sum(p.numel() for p in model.parameters()), **backend_settings(),
    }))


if __name__ == "__main__":
    main()
