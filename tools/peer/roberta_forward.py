#!/usr/bin/env python3
"""Python peer of //roberta:roberta_infer: times the forward pass of
transformers' RoBERTa/XLM-R sequence classifier (random weights, 4 labels,
SDPA attention) on one fixed batch of random token ids, for the variants
eager (fp32), torchscript (traced with the inputs it is timed on, then
frozen), int8 (dynamic int8 of every nn.Linear with per-channel weights, as
roberta_infer --quantize; CPU) and fp16 (GPU only), and
prints one JSON line per variant with the time of every timed batch.

With --random_lengths the sequences get lengths drawn from [seq/2, seq] and
are padded to seq with a zero mask, as roberta_infer's synthetic data with
--pad_to_max_len; without it every position is a real token and no mask is
passed (the C++ side passes none either).
--agreement N also reports, for int8, the fraction of N random sequences
whose predicted label equals the fp32 model's.

  /tmp/hfvenv/bin/python tools/peer/roberta_forward.py --model roberta-base \
      --variant eager,torchscript,int8 --batch 32 --seq 128 --threads 2
"""
import argparse
import copy
import json
import statistics
import sys
import time
import warnings

import torch
import transformers

from backend_settings import backend_settings

# The named configs of roberta/roberta.cc: (model class prefix, vocab, hidden, layers, heads, intermediate).
NAMED_CONFIGS = {
    "roberta-small": ("Roberta", 50265, 768, 6, 12, 3072),  # distilroberta-base's shape
    "roberta-base": ("Roberta", 50265, 768, 12, 12, 3072),
    "roberta-large": ("Roberta", 50265, 1024, 24, 16, 4096),
    "xlm-roberta-base": ("XLMRoberta", 250002, 768, 12, 12, 3072),
    "xlm-roberta-large": ("XLMRoberta", 250002, 1024, 24, 16, 4096),
}
VARIANTS = ["eager", "torchscript", "int8", "fp16"]
PAD, BOS, EOS = 1, 0, 2


def build_model(name, seed):
    prefix, vocab, hidden, layers, heads, intermediate = NAMED_CONFIGS[name]
    config = getattr(transformers, prefix + "Config")(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=514, type_vocab_size=1, pad_token_id=PAD,
        bos_token_id=BOS, eos_token_id=EOS, layer_norm_eps=1e-5, num_labels=4, attn_implementation="sdpa")
    torch.manual_seed(seed)
    return getattr(transformers, prefix + "ForSequenceClassification")(config).eval()


def make_batch(batch, seq, vocab, random_lengths, generator):
    """Token ids <s> w ... w </s> [<pad> ...] and their attention mask."""
    ids = torch.randint(3, vocab, (batch, seq), generator=generator)
    lengths = (torch.randint(max(seq // 2, 2), seq + 1, (batch,), generator=generator) if random_lengths
               else torch.full((batch,), seq))
    mask = (torch.arange(seq).unsqueeze(0) < lengths.unsqueeze(1)).long()
    ids[:, 0] = BOS
    ids[torch.arange(batch), lengths - 1] = EOS
    ids[mask == 0] = PAD
    return ids, mask


class Logits(torch.nn.Module):
    """forward(input_ids[, attention_mask]) -> logits, a signature torch.jit.trace can take."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def make_variant(variant, model, example, device):
    if variant == "eager":
        return Logits(model.to(device))
    if variant == "fp16":
        return Logits(copy.deepcopy(model).to(device).half())
    if variant == "int8":
        with warnings.catch_warnings():  # torch.ao.quantization warns that it is deprecated for torchao
            warnings.simplefilter("ignore")
            # Per-channel int8 weights, as roberta_infer --quantize (the default qconfig is per-tensor).
            qconfig = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
            return Logits(torch.ao.quantization.quantize_dynamic(model, qconfig))
    if variant == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings from transformers' Python-side checks
            traced = torch.jit.trace(Logits(model.to(device)), example)
            return torch.jit.freeze(traced.eval())
    raise ValueError(variant)


def time_forwards(fn, inputs, iters, warmup, device):
    seconds = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn(*inputs)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                seconds.append(time.perf_counter() - start)
    return seconds


def agreement(fp32, other, model_name, n, batch, seq, random_lengths, seed):
    """Fraction of n random sequences on which `other` predicts fp32's label."""
    generator = torch.Generator().manual_seed(seed + 1000)
    same = 0
    with torch.inference_mode():
        for start in range(0, n, batch):
            ids, mask = make_batch(min(batch, n - start), seq, NAMED_CONFIGS[model_name][1], random_lengths, generator)
            same += (fp32(ids, mask).argmax(1) == other(ids, mask).argmax(1)).sum().item()
    return same / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="roberta-base", choices=sorted(NAMED_CONFIGS))
    parser.add_argument("--variant", default="eager", help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--random_lengths", action="store_true",
                        help="lengths in [seq/2, seq], padded to seq (roberta_infer's synthetic data)")
    parser.add_argument("--iters", type=int, default=10, help="timed forwards")
    parser.add_argument("--warmup", type=int, default=2, help="forwards before timing")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--agreement", type=int, default=0, metavar="N",
                        help="for int8: fraction of N random sequences with fp32's predicted label")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    variants = args.variant.split(",")
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant '{v}' (choose from {', '.join(VARIANTS)})")
        if v == "int8" and args.device != "cpu":
            parser.error("int8 (dynamic quantization) runs on the CPU: drop --device cuda")
        if v == "fp16" and args.device != "cuda":
            parser.error("fp16 is for the GPU: add --device cuda")
    if args.batch < 1 or args.seq < 3 or args.seq > 512 or args.iters < 1 or args.warmup < 0:
        parser.error("need --batch >= 1, 3 <= --seq <= 512, --iters >= 1, --warmup >= 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    model = build_model(args.model, args.seed)
    ids, mask = make_batch(args.batch, args.seq, NAMED_CONFIGS[args.model][1], args.random_lengths,
                           torch.Generator().manual_seed(args.seed + 1))
    # Without padding no mask, as the C++ side: transformers would check an
    # all-ones mask on every forward (a device sync on a GPU).
    inputs = (ids.to(device), mask.to(device)) if args.random_lengths else (ids.to(device),)
    for variant in variants:
        fn = make_variant(variant, model, inputs, device)
        seconds = time_forwards(fn, inputs, args.iters, args.warmup, device)
        record = {"impl": "python-transformers", "transformers": transformers.__version__,
                  "torch": torch.__version__, "model": args.model, "variant": variant, "batch": args.batch,
                  "seq": args.seq, "random_lengths": args.random_lengths, "threads": torch.get_num_threads(),
                  "device": args.device, "batch_seconds": seconds, "median_ms": 1e3 * statistics.median(seconds),
                  **backend_settings()}
        if variant == "int8":
            record["quantized_engine"] = torch.backends.quantized.engine
            if args.agreement > 0:
                record["agreement_with_fp32"] = agreement(Logits(model.cpu()), fn, args.model, args.agreement,
                                                          args.batch, args.seq, args.random_lengths, args.seed)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sys.exit(main())
