#!/usr/bin/env python3
"""Makes the torch.save fixtures read by common/serialize/torch_save_reader_test.

Writes, under tests/fixtures/:
  sequential_state_dict.pt  torch.save(model.state_dict()) of
                            nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2),
                            nn.Linear(4, 3)): an OrderedDict with _metadata and
                            an int64 num_batches_tracked.
  mixed_state_dict.pt       a plain dict: fp16, bf16, float64, int and bool
                            tensors, a transposed (non-contiguous) tensor, two
                            tensors viewing one storage, a 0-dim tensor and an
                            empty tensor.
All values are closed-form (see the comments below) and the C++ test spells out
the same values, so the files can be remade at any time; only their random
.data/serialization_id changes.

Rerun from the workspace root (needs only torch):
  .venv/bin/python tools/make_state_dict_fixtures.py
tests/fixtures/tiny_state_dict.pt is made by tools/make_resnet_fixture.py.
"""
import os

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def sequential_state_dict():
    """Entry number `index` (in state_dict order) holds 0.25 * j - index at
    flat position j; num_batches_tracked is 5."""
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2), nn.Linear(4, 3))
    with torch.no_grad():
        for index, (name, tensor) in enumerate(model.state_dict().items()):
            if name.endswith("num_batches_tracked"):
                tensor.fill_(5)
            else:
                values = torch.arange(tensor.numel(), dtype=torch.float32) * 0.25 - index
                tensor.copy_(values.reshape(tensor.shape))
    return model.state_dict()


def mixed_state_dict():
    base = torch.arange(12, dtype=torch.float32)  # one storage, two views
    return {
        "half": (torch.arange(6, dtype=torch.float32) * 0.5).reshape(2, 3).half(),
        "bfloat16": (torch.arange(4, dtype=torch.float32) * 0.25 - 0.5).bfloat16(),
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
        "shared_a": base[2:6],                      # offset 2, size 4
        "shared_b": base.view(3, 4)[1:, ::2],       # offset 4, stride (4, 2)
        "float64": torch.tensor([0.1, -2.5], dtype=torch.float64),
        "int32": torch.tensor([-3, 0, 2147483647], dtype=torch.int32),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(-1.5),
        "empty": torch.zeros(0, 3),
    }


def main():
    torch.save(sequential_state_dict(), os.path.join(FIXTURES, "sequential_state_dict.pt"))
    torch.save(mixed_state_dict(), os.path.join(FIXTURES, "mixed_state_dict.pt"))


if __name__ == "__main__":
    main()
