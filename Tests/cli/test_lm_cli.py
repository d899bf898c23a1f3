"""The language engine through hunyuan-cli, checked with numpy against the reference fixtures
(reference.safetensors written by Tencent's / transformers' code) and tiktoken."""
import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import lm_fixtures, run


def test_logits_npy_matches_reference(cli, shared, tmp_path):
    for d in lm_fixtures(shared):
        ref = load_file(str(d / "reference.safetensors"))
        ids = ",".join(str(int(i)) for i in ref["input_ids"])
        out = tmp_path / f"{d.name}.npy"
        run(cli, "logits", d, "--tokens", ids, "--output", out)
        got = np.load(out)
        assert got.dtype == np.float32 and got.shape == ref["logits"].shape
        assert np.abs(got - ref["logits"]).max() <= 1e-4, d.name


def test_generate_greedy_matches_reference(cli, shared):
    for d in lm_fixtures(shared):
        ref = load_file(str(d / "reference.safetensors"))
        ids = ",".join(str(int(i)) for i in ref["input_ids"])
        for threads in (1, 2):
            r = run(cli, "generate", d, "--tokens", ids, "--max-tokens", len(ref["greedy_ids"]), "--greedy",
                    "-t", threads)
            got = [int(x) for x in r.stdout.split()]
            # Generation stops early only at an eos id, which the reference does not do.
            n = len(got)
            assert got == [int(x) for x in ref["greedy_ids"][:n]], d.name
            assert n == len(ref["greedy_ids"]) or got[-1] in (2,), d.name


def test_errors_exit_nonzero_with_message(cli, shared):
    d = lm_fixtures(shared)[0]
    r = run(cli, "generate", d, "--tokens", "1,99999999", "--max-tokens", "2", check=False)
    assert r.returncode != 0 and "vocabulary" in r.stderr and r.stdout == ""
    r = run(cli, "logits", "/nonexistent", "--tokens", "1", "--output", "/tmp/x.npy", check=False)
    assert r.returncode != 0 and r.stderr


def test_random_model_and_bench(cli, shared, tmp_path):
    cfg = json.loads((lm_fixtures(shared)[0] / "config.json").read_text())
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    run(cli, "random-model", tmp_path / "cfg.json", "-o", tmp_path / "m", "--seed", "3", "--dtype", "bf16")
    assert (tmp_path / "m" / "generation_config.json").exists()
    r = run(cli, "bench", tmp_path / "m", "-p", "8", "-n", "4", "-t", "1,2", "--json")
    rep = json.loads(r.stdout)  # exactly one JSON array, one object per configuration
    assert [x["threads"] for x in rep] == [1, 2]
    assert all(x["prefill_tps"] > 0 and x["decode_tps"] > 0 for x in rep)
    # -d: both measurements after DEPTH tokens of context; --no-warmup runs only the timed repetitions.
    r = run(cli, "bench", tmp_path / "m", "-p", "8", "-n", "4", "-d", "40", "-t", "2", "--reps", "1", "--no-warmup",
            "--kv-type", "f16", "--json")
    (row,) = json.loads(r.stdout)
    assert row["n_depth"] == 40 and row["kv_type"] == "f16" and row["prefill_tps"] > 0 and row["decode_tps"] > 0
    assert row["kv_bytes"] == row["kv_bytes_per_token"] * (40 + 8 + 4 + 1)  # the cache sized for depth + p + n
    assert "at depth 40" in r.stderr
    bad = run(cli, "bench", tmp_path / "m", "-d=-1", check=False)
    assert bad.returncode != 0 and "-d" in bad.stderr


def test_generate_prompt_stop_strings(cli):
    """generate --prompt --stop: the text generated without --stop, cut at the first occurrence of any of
    the strings (the earliest wins); the reason on stderr says so."""
    base = ["generate", "builtin:hunyuan-tiny", "--prompt", "ROMEO:", "--greedy", "--repeat-penalty", "1",
            "--max-tokens", "48"]
    full = run(cli, *base).stdout
    assert full.endswith("\n")
    full = full[:-1]
    assert len(full) > 40
    a, b = full[len(full) // 2: len(full) // 2 + 4], full[10:12]
    r = run(cli, *base, "--stop", a)
    assert r.stdout == full[: full.find(a)] + "\n" and "stop: stopString" in r.stderr
    r = run(cli, *base, "--stop", a, "--stop", b)
    assert r.stdout == full[: min(full.find(a), full.find(b))] + "\n"
    r = run(cli, *base, "--stop", "\u2603 absent")
    assert r.stdout == full + "\n" and "stopString" not in r.stderr
    for bad in (["--stop", ""], ["--stop", "x", "--tokens", "1"]):
        r = run(cli, *base, *bad, check=False)
        assert r.returncode != 0 and r.stderr and r.stdout == "", bad


def test_generate_prompt_stops_at_the_tokenizer_stop_ids(cli, shared, tmp_path):
    """generate --prompt ends at the tokenizer's stop ids (its generation_config.json) as well as the
    model's eos: with a tokenizer whose stop id is a token that --tokens generates mid-way, the text is
    the tiktoken decoding of --tokens' ids (same prompt ids) up to and including its first occurrence."""
    tiktoken_load = pytest.importorskip("tiktoken.load")
    tokdir = shared / "data" / "tokenizer"
    if not (tokdir / "hy.tiktoken").exists():
        pytest.skip(f"no tokenizer at {tokdir}")
    cfg = json.loads((lm_fixtures(shared)[0].parent / "hunyuan-large-tiny" / "config.json").read_text())
    cfg.update(vocab_size=128166, eos_token_id=127960, max_position_embeddings=256)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    run(cli, "random-model", tmp_path / "cfg.json", "-o", tmp_path / "m", "--seed", "11")
    ranks = tiktoken_load.load_tiktoken_bpe(str(tokdir / "hy.tiktoken"))
    by_id = {v: k for k, v in ranks.items()}
    prompt_ids = [127958, ranks[b"a"]]
    common = ["--greedy", "--repeat-penalty", "1", "--max-tokens", "48"]
    ids = [int(x) for x in run(cli, "generate", tmp_path / "m", "--tokens", ",".join(map(str, prompt_ids)),
                               *common).stdout.split()]
    k = next((i for i in range(len(ids) // 2, len(ids)) if ids[i] < 127957 and ids[i] not in ids[:i]), None)
    if k is None:
        pytest.skip(f"no ordinary token first generated in the second half of {ids}")
    mytok = tmp_path / "tok"
    mytok.mkdir()
    for f in ("hy.tiktoken", "tokenizer_config.json"):
        shutil.copy(tokdir / f, mytok / f)
    (mytok / "generation_config.json").write_text(json.dumps({"eos_token_id": [ids[k]]}))
    r = run(cli, "generate", tmp_path / "m", "--prompt", "a", "--tokenizer", mytok, *common)
    want = b"".join(by_id.get(t, b"") for t in ids[: k + 1] if t < 127957).decode("utf-8", errors="replace")
    assert r.stdout == want + "\n"
    assert f"stop: eos, {k + 1} tokens" in r.stderr, r.stderr
