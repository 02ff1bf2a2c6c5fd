#!/usr/bin/env python3
"""Makes tests/fixtures/resnet_torchvision.json: torchvision's outputs for
ResNet-18/34/50 (10 classes) with deterministic weights, so the C++ models can
be checked against torchvision without committing any weights.

Weights and inputs are closed-form (see deterministic_state_dict), so the C++
test computes the very same ones. Also writes tests/fixtures/tiny_state_dict.pt,
a small torch.save file used to test reading Python's format.

Rerun (needs torchvision; tools/setup.sh does not install it):
  python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1
  /tmp/tv/bin/python tools/make_resnet_fixture.py
"""
import collections
import json
import math
import os
import sys

import torch
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def deterministic_tensor(shape, index, kind):
    """Value i of the tensor at sorted-key position `index` is a sine of i."""
    numel = math.prod(shape)
    phase = torch.arange(numel, dtype=torch.float64) * 0.37 + 1.3 * index + 0.1
    s = torch.sin(phase)
    if kind == "weight":  # conv / linear weight: scaled by fan-in
        fan_in = numel // shape[0]
        values = s * (1.5 / math.sqrt(fan_in))
    elif kind == "bn_weight":
        values = 1.0 + 0.1 * s
    elif kind == "running_var":
        values = 1.0 + 0.5 * s.abs()
    else:  # biases and running means
        values = 0.1 * s
    return values.reshape(shape).to(torch.float32)


def tensor_kind(name, tensor):
    if name.endswith("running_var"):
        return "running_var"
    if name.endswith("running_mean") or name.endswith("bias"):
        return "small"
    if tensor.dim() == 1:
        return "bn_weight"
    return "weight"


def deterministic_state_dict(model):
    state = model.state_dict()
    names = sorted(k for k in state if not k.endswith("num_batches_tracked"))
    out = {}
    for index, name in enumerate(names):
        out[name] = deterministic_tensor(list(state[name].shape), index, tensor_kind(name, state[name]))
    return out


def deterministic_input(batch):
    numel = batch * 3 * 32 * 32
    x = torch.sin(torch.arange(numel, dtype=torch.float64) * 0.011)
    return x.reshape(batch, 3, 32, 32).to(torch.float32)


def main():
    torch.set_num_threads(1)
    fixture = {"torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
               "input": "sin(0.011 * i) over [2, 3, 32, 32]", "models": {}}
    for depth in (18, 34, 50):
        model = getattr(torchvision.models, f"resnet{depth}")(num_classes=10).eval()
        model.load_state_dict(deterministic_state_dict(model), strict=False)
        with torch.no_grad():
            logits = model(deterministic_input(2)).double()
        fixture["models"][str(depth)] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "state_dict_keys": len(model.state_dict()),
            "logits": logits.tolist(),
        }
        print(f"resnet{depth}: logits[0][:3] = {logits[0][:3].tolist()}", file=sys.stderr)
    os.makedirs(FIXTURES, exist_ok=True)
    with open(os.path.join(FIXTURES, "resnet_torchvision.json"), "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    tiny = collections.OrderedDict(
        [("conv1.weight", torch.arange(6, dtype=torch.float32).reshape(2, 3)),
         ("bn1.num_batches_tracked", torch.tensor(7))])
    torch.save(tiny, os.path.join(FIXTURES, "tiny_state_dict.pt"))


if __name__ == "__main__":
    main()
