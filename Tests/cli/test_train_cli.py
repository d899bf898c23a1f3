"""The training commands of hunyuan-cli against independent references:

- `train-tokenizer`: the learned merges equal a plain-Python BPE trainer (regex pre-tokenization with
  the official pattern, most frequent pair first, ties to the smallest id pair), and `bpe-encode`
  encodes held-out text id for id like tiktoken built from the written hy.tiktoken;
- `perplexity`: the strided-window estimate equals numpy over the logits `hunyuan-cli logits` gives
  for the same windows;
- `train`: a few steps from a JSON config print metrics JSON on stdout, write an HF checkpoint the
  engine loads, and resume from the saved state.

Needs: tiktoken, regex, numpy, the CLI ($HUNYUAN_CLI) and $HUNYUAN_SHARED/data/corpus.
"""
import base64
import json
import subprocess
import unicodedata
from collections import Counter

import pytest

PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
       r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")


@pytest.fixture(scope="module")
def corpus(shared):
    d = shared / "data" / "corpus"
    files = [d / "tinyshakespeare.txt", d / "sanguo_yanyi.txt"]
    for f in files:
        if not f.exists():
            pytest.skip(f"{f} not present")
    return files


def run(cli, *args, **kw):
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, check=True, **kw)


def slices(corpus, tmp_path, size=60_000):
    out = []
    for i, f in enumerate(corpus):
        text = f.read_bytes()[:size].decode("utf-8", errors="ignore")
        p = tmp_path / f"part{i}.txt"
        p.write_text(text, encoding="utf-8")
        out.append(p)
    return out


def reference_merges(texts, n_merges):
    regex = pytest.importorskip("regex")
    pieces = Counter()
    for t in texts:
        for m in regex.findall(PAT, unicodedata.normalize("NFC", t)):
            b = m.encode("utf-8")
            if len(b) > 1:
                pieces[b] += 1
    words = [[list(p), c] for p, c in pieces.items()]
    tokens = [bytes([i]) for i in range(256)]
    for _ in range(n_merges):
        pairs = Counter()
        for sym, c in words:
            for a, b in zip(sym, sym[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = max(pairs.values())
        a, b = min(p for p, c in pairs.items() if c == best)
        new = len(tokens)
        tokens.append(tokens[a] + tokens[b])
        for w in words:
            sym, out, i = w[0], [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            w[0] = out
    return tokens


def read_ranks(path):
    ranks = {}
    for line in open(path, "rb"):
        tok, rank = line.split()
        ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def test_train_tokenizer_merges_match_reference_trainer(cli, corpus, tmp_path):
    parts = slices(corpus, tmp_path, size=20_000)
    out = tmp_path / "hy.tiktoken"
    run(cli, "train-tokenizer", *parts, "--vocab-size", 256 + 120, "-o", out)
    ranks = read_ranks(out)
    got = sorted(ranks, key=ranks.get)
    assert sorted(ranks.values()) == list(range(len(ranks)))
    expected = reference_merges([p.read_text(encoding="utf-8") for p in parts], 120)
    assert got == expected


def test_bpe_encode_matches_tiktoken(cli, corpus, tmp_path):
    tiktoken = pytest.importorskip("tiktoken")
    parts = slices(corpus, tmp_path)
    out = tmp_path / "hy.tiktoken"
    run(cli, "train-tokenizer", *parts, "--vocab-size", 1500, "-o", out)
    enc = tiktoken.Encoding("small", pat_str=PAT, mergeable_ranks=read_ranks(out), special_tokens={})
    for i, f in enumerate(corpus):
        held = f.read_bytes()[-30_000:].decode("utf-8", errors="ignore")
        p = tmp_path / f"held{i}.txt"
        p.write_text(held, encoding="utf-8")
        ids = [int(x) for x in run(cli, "bpe-encode", out, p).stdout.split()]
        assert ids == enc.encode_ordinary(unicodedata.normalize("NFC", held))


@pytest.fixture(scope="module")
def trained(cli, corpus, tmp_path_factory):
    """A 3-step run of a tiny MoE model on slices of both corpora."""
    d = tmp_path_factory.mktemp("train")
    parts = slices(corpus, d, size=40_000)
    run(cli, "train-tokenizer", *parts, "--vocab-size", 400, "-o", d / "hy.tiktoken")
    model = {
        "architectures": ["HunYuanForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 400,
        "num_experts": 4, "moe_topk": 1, "num_shared_expert": 1, "use_mixed_mlp_moe": True,
        "use_cla": True, "cla_share_factor": 2, "use_qk_norm": True, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
        "max_position_embeddings": 256,
    }
    cfg = {"model": model, "tokenizer": "hy.tiktoken", "data": [p.name for p in parts], "output": "run",
           "seq_len": 32, "batch_size": 4, "steps": 3, "learning_rate": 3e-3, "warmup_steps": 1,
           "capacity_factor": 1.0, "recycle_routing": True, "aux_loss_coef": 0.01, "eval_windows": 4,
           "threads": 2}
    (d / "run.json").write_text(json.dumps(cfg))
    r = run(cli, "train", d / "run.json")
    return d, json.loads(r.stdout), r.stderr.decode()


def test_train_prints_metrics_and_writes_checkpoint(trained):
    d, metrics, log = trained
    assert metrics["steps"] == 3
    assert 0 < metrics["train_loss"] < 10
    assert set(metrics["validation"]) == {"part0.txt", "part1.txt"}
    assert "step 3/3" in log and "tok/s" in log and "balance" in log
    for f in ["config.json", "model.safetensors", "generation_config.json", "hy.tiktoken"]:
        assert (d / "run" / "model" / f).exists()
    # transformers' Hunyuan classes need head_dim; the dtype names what the safetensors hold
    cfg = json.loads((d / "run" / "model" / "config.json").read_text())
    raw = (d / "run" / "model" / "model.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    stored = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert isinstance(cfg.get("head_dim"), int) and cfg["head_dim"] > 0
    assert stored == {{"float32": "F32", "bfloat16": "BF16", "float16": "F16"}[cfg["torch_dtype"]]}
    assert metrics["dropped_last_step"] == 0   # recycle routing places every token
    # Per-layer expert log: every step × layer; with recycling every one of the 4 × 32 tokens is placed
    # and no expert exceeds capacity = ceil(1.0 × 128 / 4).
    rows = [l.split("\t") for l in (d / "run" / "experts.tsv").read_text().splitlines()[1:]]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(s, l) for s in (1, 2, 3) for l in (0, 1)]
    for r in rows:
        load = [int(x) for x in r[5].split(",")]
        assert int(r[2]) == 32 and int(r[3]) == 0
        assert sum(load) == 128 and max(load) <= 32
        assert sum(int(x) for x in r[6].split(",")) == 128


def test_train_resumes_from_state(cli, trained):
    d, _, _ = trained
    r = run(cli, "train", d / "run.json", "--steps", 4)
    assert "resumed from" in r.stderr.decode()
    assert json.loads(r.stdout)["steps"] == 4


def test_perplexity_matches_numpy_over_engine_logits(cli, trained, tmp_path):
    np = pytest.importorskip("numpy")
    d, _, _ = trained
    model = d / "run" / "model"
    text = tmp_path / "t.txt"
    text.write_text((d / "part0.txt").read_text(encoding="utf-8")[-3000:], encoding="utf-8")
    ids = [int(x) for x in run(cli, "bpe-encode", model / "hy.tiktoken", text).stdout.split()][:150]
    ctx, stride = 64, 32
    r = run(cli, "perplexity", model, text, "--ctx", ctx, "--stride", stride, "--max-tokens", 150, "--json")
    got = json.loads(r.stdout.decode().strip().splitlines()[-1])
    nll, scored, begin = [], 1, 0
    while scored < len(ids):
        end = min(begin + ctx, len(ids))
        npy = tmp_path / "l.npy"
        run(cli, "logits", model, "--tokens", ",".join(map(str, ids[begin:end])), "-o", npy, "--overwrite")
        logits = np.load(npy).astype(np.float64)
        for t in range(max(scored, begin + 1), end):
            row = logits[t - 1 - begin]
            m = row.max()
            nll.append(np.log(np.exp(row - m).sum()) + m - row[ids[t]])
        scored = end
        if end == len(ids):
            break
        begin += stride
    assert got["tokens"] == len(nll)
    assert abs(got["perplexity"] - float(np.exp(np.mean(nll)))) < 1e-3 * got["perplexity"]
