"""The built-in model hunyuan-tiny as users get it: loaded by name from the installed wheel (no source
tree, no HUNYUAN_MODELS), its tokenizer checked against tiktoken, text generated in both languages."""
import base64
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hunyuan

ROOT = Path(__file__).resolve().parents[2]


def test_builtin_loads_from_the_installed_package(tmp_path):
    code = ("import hunyuan; m = hunyuan.Model('builtin:hunyuan-tiny'); "
            "print(m.info['n_vocab'], m.info['n_expert'], m.info['cla_share_factor'])")
    env = {k: v for k, v in os.environ.items() if k != "HUNYUAN_MODELS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["8200", "8", "2"]
    assert (Path(hunyuan.__file__).parent / "models" / "hunyuan-tiny" / "model.safetensors").exists()


def test_builtin_tokenizer_matches_tiktoken():
    tiktoken = pytest.importorskip("tiktoken")
    from conftest import PAT, SPECIALS

    folder = ROOT / "models" / "hunyuan-tiny"
    ranks = {}
    for line in open(folder / "hy.tiktoken", "rb"):
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    assert len(ranks) == 8192
    enc = tiktoken.Encoding("tiny", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens={t: 8192 + i for i, t in enumerate(SPECIALS)})
    tok = hunyuan.Tokenizer("builtin:hunyuan-tiny")
    for text in ["ROMEO:\nWhat light through yonder window breaks?", "却说曹操引兵至宛城。", "12 apples <|eos|>"]:
        assert tok.encode(text, wrap=False, special=False) == enc.encode(text, disallowed_special=())
        assert tok.encode(text) == [8193] + enc.encode(text, allowed_special="all") + [8192]


def test_builtin_generates_english_and_chinese():
    with hunyuan.Model("builtin:hunyuan-tiny") as m:
        en = m.generate("ROMEO:", max_tokens=40, seed=1)
        zh = "".join(m.generate("却说曹操", max_tokens=40, seed=1, stream=True))
    letters = sum(c.isascii() and c.isalpha() for c in en)
    cjk = sum("\u4e00" <= c <= "\u9fff" for c in zh)
    assert letters > 20, en
    assert cjk > 10, zh


def test_builtin_beats_unigram_on_held_out_shakespeare(shared):
    """The model's held-out cross-entropy against the unigram model of the same tokenizer (counts on
    the training 95%), both computed here with numpy from the library's logits."""
    text = (shared / "data" / "corpus" / "tinyshakespeare.txt").read_text()
    cut = text.index("\n", int(len(text) * 0.95)) + 1
    with hunyuan.Model("builtin:hunyuan-tiny") as m:
        tok = m.tokenizer
        train_ids = np.array(tok.encode(text[:cut][:200000], wrap=False))
        held = tok.encode(text[cut:cut + 4000], wrap=False)[:257]
        logits = m.logits(held[:-1]).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    nll_model = -logp[np.arange(len(held) - 1), held[1:]].mean()
    counts = np.bincount(train_ids, minlength=8200) + 1.0
    nll_unigram = -np.log(counts[held[1:]] / counts.sum()).mean()
    assert np.exp(nll_model) < 0.5 * np.exp(nll_unigram), (np.exp(nll_model), np.exp(nll_unigram))
