#!/usr/bin/env python3
"""Makes tests/fixtures/roberta_tiny/: a tiny XLM-R sequence classifier saved by
Hugging Face transformers (config.json + model.safetensors) and its outputs
(expected.json), so the C++ RoBERTa/XLM-R model can be checked against
transformers without network access or a real checkpoint.

The weights are random (seed 0, std 0.2), then every bias and LayerNorm
weight/bias is perturbed, and the padding rows of the word and position
embeddings (zeroed by transformers at init) are made nonzero, so that zero/one
defaults or a padding row cannot hide a bug: padded positions must be ignored
through the attention mask.

expected.json holds, for a right-padded batch of 3 sequences (lengths 12, 7, 4;
pad id 1, <s>=0, </s>=2), the logits (eval mode) and the encoder output at
position 0; the sorted state_dict names with shapes; and one deterministic
training step ("train_step": eval mode so dropout is off, mean cross-entropy
on `labels`, plain SGD without momentum or weight decay at `lr`): loss before,
the L2 norm of every gradient, loss and logits after the step.

Rerun (tools/setup.sh does not install transformers):
  python3 -m venv /tmp/hfvenv
  /tmp/hfvenv/bin/pip install torch==2.13.0 transformers==5.24.0 safetensors==0.8.0
  /tmp/hfvenv/bin/python tools/make_roberta_fixture.py
"""
import json
import os

import safetensors.torch
import torch
import transformers
from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "roberta_tiny")
PAD, BOS, EOS = 1, 0, 2
SEQ_LEN = 12
LENGTHS = (12, 7, 4)
LABELS = [3, 0, 2]
LR = 0.1


def make_config():
    return XLMRobertaConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=40, type_vocab_size=1, pad_token_id=PAD,
        bos_token_id=BOS, eos_token_id=EOS, layer_norm_eps=1e-5,
        hidden_act="gelu", num_labels=4, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        # 0.2 ~ 1/sqrt(hidden_size) instead of the default 0.02, so that the
        # sequences' logits differ by O(1), not by 1e-4.
        initializer_range=0.2)


def make_model():
    torch.manual_seed(0)
    model = XLMRobertaForSequenceClassification(make_config())
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.1
            if name.endswith(".bias"):
                p.add_(noise)  # LayerNorm biases and Linear biases
            elif "LayerNorm" in name:
                p.add_(noise)  # LayerNorm weights: around 1
        emb = model.roberta.embeddings
        emb.word_embeddings.weight[PAD] = torch.randn(32, generator=gen) * 0.5
        emb.position_embeddings.weight[PAD] = torch.randn(32, generator=gen) * 0.5
    return model.eval()


def make_batch():
    gen = torch.Generator().manual_seed(2)
    ids = torch.full((len(LENGTHS), SEQ_LEN), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(LENGTHS):
        ids[row, 0] = BOS
        ids[row, 1:n - 1] = torch.randint(3, 120, (n - 2,), generator=gen)
        ids[row, n - 1] = EOS
        mask[row, :n] = 1
    return ids, mask


def train_step(ids, mask):
    """One SGD step on a fresh copy of the model (eval mode: no dropout)."""
    model = make_model()
    labels = torch.tensor(LABELS)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    grad_norms = {n: p.grad.norm().item() for n, p in
                  sorted(model.named_parameters())}
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(LR * p.grad)
        after = model(input_ids=ids, attention_mask=mask, labels=labels)
    return {
        "labels": LABELS, "lr": LR, "optimizer": "SGD (no momentum, no weight decay)",
        "mode": "eval (dropout off)", "loss": "mean cross-entropy",
        "loss_before": out.loss.item(), "grad_norms": grad_norms,
        "loss_after": after.loss.item(), "logits_after": after.logits.tolist(),
    }


def main():
    model = make_model()
    ids, mask = make_batch()
    with torch.no_grad():
        enc = model.roberta(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = model(input_ids=ids, attention_mask=mask).logits
        n = LENGTHS[1]
        alone = model(input_ids=ids[1:2, :n],
                      attention_mask=mask[1:2, :n]).logits
    diff = (alone[0] - logits[1]).abs().max().item()
    assert diff < 1e-5, f"padded row differs from unpadded sequence by {diff}"

    # The same weights under the other attention implementation must agree.
    used = model.config._attn_implementation
    other = "eager" if used != "eager" else "sdpa"
    twin = make_model()
    twin.set_attn_implementation(other)
    assert twin.config._attn_implementation == other
    with torch.no_grad():
        other_logits = twin(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(other_logits, logits, atol=1e-5), other

    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):
        os.remove(os.path.join(OUT_DIR, f))
    model.save_pretrained(OUT_DIR, safe_serialization=True)
    for f in os.listdir(OUT_DIR):
        if f not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(OUT_DIR, f))

    expected = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "attn_implementation": used,
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "logits": logits.tolist(),
        "last_hidden_state_first_token": enc[:, 0, :].tolist(),
        "parameter_names": {k: list(v.shape) for k, v in
                            sorted(model.state_dict().items())},
        "train_step": train_step(ids, mask),
    }
    with open(os.path.join(OUT_DIR, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")

    print(f"attention: {used}; "
          f"padded vs unpadded max diff {diff:.2e}; vs {other} "
          f"{(other_logits - logits).abs().max().item():.2e}")
    saved = safetensors.torch.load_file(os.path.join(OUT_DIR, "model.safetensors"))
    for k, v in sorted(saved.items()):
        print(f"  {k} {list(v.shape)} {v.dtype}")
    for f in sorted(os.listdir(OUT_DIR)):
        print(f"{f}: {os.path.getsize(os.path.join(OUT_DIR, f))} bytes")


if __name__ == "__main__":
    main()
