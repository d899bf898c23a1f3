"""Encode throughput of hunyuan-cli's tokenizer vs tiktoken (Rust, single-threaded), same run.

usage: python bench/tokenizer_bench.py [--cli PATH] [--shared DIR] [--reps N]

Ours: `hunyuan-cli tokenize --bench N` times N in-process encodes of the whole corpus (best run;
includes UTF-8 validation, NFC and special-token parsing; process start-up and vocabulary loading are
excluded). tiktoken: Encoding.encode(text, allowed_special="all") on the already NFC-normalized str,
best of N, one thread. Both must produce the same ids (checked). Prints a Markdown table.
"""
import argparse
import base64
import json
import os
import subprocess
import time
import unicodedata
from pathlib import Path

import tiktoken

ROOT = Path(__file__).resolve().parents[1]
PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
       r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
SPECIALS = ["<|endoftext|>", "<|startoftext|>", "<|bos|>", "<|eos|>", "<|pad|>"] + \
    [f"<|extra_{i}|>" for i in range(204)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.environ.get("HUNYUAN_CLI", str(ROOT / "build" / "hunyuan-cli")))
    ap.add_argument("--shared", default=os.environ.get("HUNYUAN_SHARED", str(ROOT.parent / "shared")))
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    tok = Path(a.shared) / "data" / "tokenizer"
    ranks = {}
    for line in open(tok / "hy.tiktoken", "rb"):
        t, r = line.split()
        ranks[base64.b64decode(t)] = int(r)
    enc = tiktoken.Encoding("HunYuan", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens={s: 127957 + i for i, s in enumerate(SPECIALS)})
    print(f"tiktoken {tiktoken.__version__}, {a.reps} runs each, best run, one thread\n")
    print("| corpus | MB | tokens | hunyuan MB/s | tiktoken MB/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ["tinyshakespeare.txt", "sanguo_yanyi.txt"]:
        data = (Path(a.shared) / "data" / "corpus" / name).read_bytes()
        text = unicodedata.normalize("NFC", data.decode())
        ours = subprocess.run([a.cli, "tokenize", "--tokenizer", str(tok), "--no-wrap"], input=data,
                              capture_output=True, check=True).stdout.split()
        ref = enc.encode(text, allowed_special="all")
        assert [int(x) for x in ours] == ref, f"{name}: ids differ from tiktoken"
        best_ref = float("inf")
        for _ in range(a.reps):
            t0 = time.perf_counter()
            enc.encode(text, allowed_special="all")
            best_ref = min(best_ref, time.perf_counter() - t0)
        r = json.loads(subprocess.run([a.cli, "tokenize", "--tokenizer", str(tok), "--no-wrap", "--bench", str(a.reps)],
                                      input=data, capture_output=True, check=True).stdout)
        mb = len(data) / 1e6
        print(f"| {name} | {mb:.2f} | {len(ref)} | {r['mb_per_s']:.1f} | {mb / best_ref:.1f} | "
              f"{r['mb_per_s'] / (mb / best_ref):.2f}x |")


if __name__ == "__main__":
    main()
