"""Logit drift of quantized checkpoints against their f32 source (BENCHMARKS.md, "Quantized weights
and kernels"): max and mean |Δlogit|, mean KL(f32 ‖ quantized) and top-1 agreement over a random
token sequence, through `hunyuan-cli logits` (prefill path) — no torch needed.

usage: python bench/quant_drift.py F32_DIR QUANT_DIR [QUANT_DIR ...] [--tokens N] [--cli PATH]
"""
import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np


def logits(cli, model, ids, out):
    subprocess.run([cli, "logits", model, "--tokens", ",".join(map(str, ids)), "--output", out], check=True)
    return np.load(out).astype(np.float64)


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("f32")
    ap.add_argument("quantized", nargs="+")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--cli", default=".build/release/hunyuan-cli")
    a = ap.parse_args()
    vocab = json.loads((Path(a.f32) / "config.json").read_text())["vocab_size"]
    ids = np.random.default_rng(0).integers(0, vocab, a.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        ref = logits(a.cli, a.f32, ids, f"{tmp}/ref.npy")
        lr = log_softmax(ref)
        print("| model | max abs diff | mean abs diff | mean KL | top-1 agreement |")
        print("|---|---|---|---|---|")
        for q in a.quantized:
            got = logits(a.cli, q, ids, f"{tmp}/q.npy")
            d = np.abs(got - ref)
            kl = (np.exp(lr) * (lr - log_softmax(got))).sum(-1).mean()
            top1 = (got.argmax(-1) == ref.argmax(-1)).mean()
            print(f"| {Path(q).name} | {d.max():.4f} | {d.mean():.5f} | {kl:.2e} | {top1:.3f} |")


if __name__ == "__main__":
    main()
