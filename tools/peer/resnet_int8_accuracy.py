#!/usr/bin/env python3
"""Python PyTorch peer of `resnet_cpu_infer -q 1`'s accuracy: loads a model that
resnet_single saved, quantizes it with PyTorch's own static post-training
quantization (FX graph mode, the x86 engine's default qconfig: histogram
observers, per-channel weights) calibrated on random training images, and
prints the Fashion-MNIST test accuracy of the fp32 and the int8 model as one
JSON object. Sets what the C++ int8 model loses against what Python's loses on
the same weights.

  .venv/bin/python tools/peer/resnet_int8_accuracy.py --depth 50 --model models/Resnet-50-1gpu.pth
"""
import argparse
import gzip
import json
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet_train_step import make_model  # noqa: E402

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (gzipped) as a numpy array."""
    data = gzip.open(path).read()
    ndims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(data[4 + 4 * ndims:], np.uint8).reshape(dims)


def load_split(prefix):
    """Images as the C++ reader gives them: uint8 [N, 3, 32, 32] (padded by 2, grey copied to RGB)."""
    images = torch.from_numpy(read_idx(f"{FASHION_MNIST}/{prefix}-images-idx3-ubyte.gz").copy())
    labels = torch.from_numpy(read_idx(f"{FASHION_MNIST}/{prefix}-labels-idx1-ubyte.gz").copy()).long()
    images = torch.nn.functional.pad(images, (2, 2, 2, 2)).unsqueeze(1).expand(-1, 3, -1, -1)
    return images, labels


def normalize(images):
    return (images.float() / 255 - 0.5) / 0.5  # common/data/augment.cc NormalizeImages


def accuracy(model, images, labels):
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(labels), 500):
            correct += (model(normalize(images[i:i + 500])).argmax(1) == labels[i:i + 500]).sum().item()
    return 100.0 * correct / len(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=50, choices=[18, 34, 50])
    parser.add_argument("--model", required=True, help="state_dict saved by resnet_single")
    parser.add_argument("--calib_batches", type=int, default=32, help="batches of 32 training images")
    parser.add_argument("--threads", type=int, default=0, help="0: all cores")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    test_images, test_labels = load_split("t10k")
    train_images, _ = load_split("train")
    model, source = make_model(args.depth)
    model.load_state_dict(torch.load(args.model, map_location="cpu"))
    model.eval()
    fp32 = accuracy(model, test_images, test_labels)

    generator = torch.Generator().manual_seed(0)
    calibration = [normalize(train_images[torch.randint(0, len(train_images), (32,), generator=generator)])
                   for _ in range(args.calib_batches)]
    prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), example_inputs=(calibration[0],))
    with torch.inference_mode():
        for batch in calibration:
            prepared(batch)
    int8 = accuracy(convert_fx(prepared), test_images, test_labels)
    print(json.dumps({"model": f"resnet{args.depth}", "source": source, "checkpoint": args.model,
                      "python_torch_version": torch.__version__, "calib_batches": args.calib_batches,
                      "fp32_accuracy": fp32, "int8_accuracy": int8, "int8_loss_points": fp32 - int8}))


if __name__ == "__main__":
    main()
