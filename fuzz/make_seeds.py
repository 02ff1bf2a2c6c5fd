#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs (fuzz/corpus/<target>/): small valid
files of each format and a few near misses. Needs torch for the checkpoints:

  .venv/bin/python fuzz/make_seeds.py
"""
import gzip
import json
import os
import struct

import torch

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def idx(dims, data, element_type=0x08):
    return bytes([0, 0, element_type, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    record = bytes([3]) + bytes((i * 7) % 256 for i in range(3072))
    write("cifar10_fuzzer", "one_record.bin", record)
    write("cifar10_fuzzer", "two_records.bin", record + bytes([9]) + bytes(3072))
    write("cifar10_fuzzer", "label_out_of_range.bin", bytes([10]) + bytes(3072))
    write("cifar10_fuzzer", "truncated.bin", record[:1000])

    write("idx_fuzzer", "images_2x3x4", idx([2, 3, 4], bytes(range(24))))
    write("idx_fuzzer", "labels_5", idx([5], bytes([0, 1, 2, 3, 9])))
    write("idx_fuzzer", "images_2x3x4.gz", gzip.compress(idx([2, 3, 4], bytes(range(24))), mtime=0))
    write("idx_fuzzer", "wrong_type", idx([2], bytes(8), element_type=0x0D))
    write("idx_fuzzer", "truncated", idx([4, 4], bytes(10)))

    # The ids file, a zero byte, the labels file.
    write("text_ids_fuzzer", "array.txt", b"[[0, 5, 2], [0, 7, 8, 9, 2]]\0[1, 3]")
    write("text_ids_fuzzer", "json_lines.txt", b"[0, 5, 6, 2]\n[0, 11, 2]\n\0[0, 2]")
    write("text_ids_fuzzer", "mismatch.txt", b"[[0, 5, 2]]\0[1, 2]")
    write("text_ids_fuzzer", "negative.txt", b"[[0, -5, 2]]\0[1]")

    write("safetensors_fuzzer", "two.safetensors",
          safetensors({"a.weight": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
                       "b": ("I64", [3], struct.pack("<3q", 1, 2, 3))}, {"format": "pt"}))
    write("safetensors_fuzzer", "bf16.safetensors", safetensors({"x": ("BF16", [4], bytes(8)), "y": ("U8", [0], b"")}))
    write("safetensors_fuzzer", "bad_offsets.safetensors", safetensors({"a": ("F32", [8], bytes(16))}))

    fixture = os.path.join(os.path.dirname(CORPUS), "..", "tests", "fixtures", "roberta_tiny", "config.json")
    with open(fixture, "rb") as f:
        write("roberta_config_fuzzer", "tiny.json", f.read())
    minimal = {"model_type": "roberta", "vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
               "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8, "num_labels": 2}
    write("roberta_config_fuzzer", "minimal.json", json.dumps(minimal).encode())
    base = {"model_type": "xlm-roberta", "vocab_size": 250002, "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 514,
            "type_vocab_size": 1, "pad_token_id": 1, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
            "id2label": {"0": "A", "1": "B", "2": "C", "3": "D"}}
    write("roberta_config_fuzzer", "xlm_roberta_base.json", json.dumps(base).encode())

    torch.manual_seed(0)
    directory = os.path.join(CORPUS, "checkpoint_fuzzer")
    os.makedirs(directory, exist_ok=True)
    torch.save({"conv1.weight": torch.randn(2, 3, 1, 1), "bn1.num_batches_tracked": torch.tensor(3)},
               os.path.join(directory, "small_state_dict.pth"))
    torch.save({"fc.weight": torch.randn(10, 4), "fc.bias": torch.zeros(10)}, os.path.join(directory, "wrong_shape.pth"))
    base = torch.arange(12.0)
    torch.save({"view": base[2:8].view(2, 3), "half": torch.ones(3, dtype=torch.float16)},
               os.path.join(directory, "views_and_dtypes.pth"))


if __name__ == "__main__":
    main()
