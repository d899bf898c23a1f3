"""`hunyuan-cli export-gguf` read back with the `gguf` package (llama.cpp's own Python reader):
llama.cpp hunyuan-moe tensor names, shapes, types and metadata, and the weights dequantized by
gguf.quants against the source checkpoint; the tokenizer (Hunyuan's hy.tiktoken from
$HUNYUAN_SHARED/data/tokenizer) against tiktoken: token strings, types, special ids, the merges
llama.cpp's converter recovers from the ranks, and a merge-driven BPE reproducing tiktoken's ids.

Needs: gguf, tiktoken (+ its regex), safetensors, the CLI ($HUNYUAN_CLI). No llama.cpp: the greedy
check in llama.cpp itself is bench/compare-llamacpp.sh."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

gguf = pytest.importorskip("gguf")


def fixture(shared: Path, name="hunyuan-a13b-tiny"):
    d = shared / "fixtures" / "lm" / name
    if not (d / "config.json").exists():
        pytest.skip(f"LM fixture {d} not found")
    return d


def field(r, key):
    f = r.fields[key]
    v = f.parts[f.data[0]]
    return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else v[0]


@pytest.mark.parametrize("typ,tol", [("f16", 1e-3), ("q8_0", 0.01), ("q4_0", 0.13)])
def test_export_gguf_reads_back(cli, shared, tmp_path, typ, tol):
    src = fixture(shared)
    out = tmp_path / f"m-{typ}.gguf"
    subprocess.run([str(cli), "export-gguf", str(src), str(out), "--type", typ], check=True, capture_output=True)
    r = gguf.GGUFReader(str(out))
    import json
    cfg = json.loads((src / "config.json").read_text())
    assert field(r, "general.architecture") == "hunyuan-moe"
    assert field(r, "hunyuan-moe.block_count") == cfg["num_hidden_layers"]
    assert field(r, "hunyuan-moe.embedding_length") == cfg["hidden_size"]
    assert field(r, "hunyuan-moe.expert_count") == cfg["num_experts"]
    assert field(r, "hunyuan-moe.expert_used_count") == cfg["moe_topk"]
    assert field(r, "hunyuan-moe.attention.head_count_kv") == cfg["num_key_value_heads"]
    assert field(r, "hunyuan-moe.vocab_size") == cfg["vocab_size"]
    tensors = {t.name: t for t in r.tensors}
    L, E = cfg["num_hidden_layers"], cfg["num_experts"]
    expected = {"token_embd.weight", "output_norm.weight"}
    for i in range(L):
        expected |= {f"blk.{i}.{n}.weight" for n in [
            "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "ffn_norm",
            "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps",
            "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"]}
    assert set(tensors) == expected
    w = load_file(str(src / "model.safetensors"))
    qtype = {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0,
             "q4_0": gguf.GGMLQuantizationType.Q4_0}[typ]

    def check(name, ref):
        t = tensors[name]
        assert t.tensor_type == qtype, name
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ref.shape)
        err = np.sqrt(((got - ref) ** 2).sum() / (ref ** 2).sum())
        assert err < tol, (name, err)

    check("token_embd.weight", w["model.embed_tokens.weight"].astype(np.float32))
    check("blk.1.attn_q.weight", w["model.layers.1.self_attn.q_proj.weight"].astype(np.float32))
    for proj, g in [("gate_proj", "ffn_gate_exps"), ("down_proj", "ffn_down_exps")]:
        stacked = np.stack([w[f"model.layers.2.mlp.experts.{e}.{proj}.weight"] for e in range(E)]).astype(np.float32)
        check(f"blk.2.{g}.weight", stacked)
    router = tensors["blk.0.ffn_gate_inp.weight"]
    assert router.tensor_type == gguf.GGMLQuantizationType.F32
    np.testing.assert_array_equal(np.asarray(router.data).reshape(E, -1), w["model.layers.0.mlp.gate.wg.weight"])


# --- Tokenizer: llama.cpp's representation of hy.tiktoken (convert_hf_to_gguf.py, HunYuanMoEModel.set_vocab),
# checked against tiktoken: token strings decode to each rank's bytes, the merges are what the converter's
# recovery computes from the ranks, and a merge-driven BPE (llama.cpp's algorithm) reproduces tiktoken's ids.

PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
       r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
SPECIALS = ["<|endoftext|>", "<|startoftext|>", "<|bos|>", "<|eos|>", "<|pad|>"] + \
    [f"<|extra_{i}|>" for i in range(204)]
N_RANKS = 127957
VOCAB = 128256            # model vocabulary larger than the tokenizer's 128,166 ids: padded like Hunyuan-Large's


def bytes_to_unicode():
    """GPT-2's byte -> character table (openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def strings(r, key):
    f = r.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def ints(r, key):
    f = r.fields[key]
    return [int(f.parts[i][0]) for i in f.data]


@pytest.fixture(scope="module")
def tok(shared):
    d = shared / "data" / "tokenizer"
    if not (d / "hy.tiktoken").exists():
        pytest.skip(f"hy.tiktoken not found in {d}")
    tiktoken = pytest.importorskip("tiktoken")
    import base64
    ranks = {}
    for line in open(d / "hy.tiktoken", "rb"):
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    special = {s: N_RANKS + i for i, s in enumerate(SPECIALS)}
    return d, ranks, tiktoken.Encoding("HunYuan", pat_str=PAT, mergeable_ranks=ranks, special_tokens=special)


@pytest.fixture(scope="module")
def vocab_gguf(cli, shared, tok, tmp_path_factory):
    """A tiny random HunYuanMoEV1 model with a 128,256-row embedding and Hunyuan's tokenizer files in
    its folder, exported at f16 and read back."""
    import json
    import shutil
    tok_dir = tok[0]
    cfg = json.loads((fixture(shared) / "config.json").read_text())
    for k in ["sep_token_id", "eod_token_id"]:
        cfg.pop(k, None)
    cfg.update(vocab_size=VOCAB, bos_token_id=127958, eos_token_id=127960, pad_token_id=127961)
    tmp = tmp_path_factory.mktemp("gguf-vocab")
    (tmp / "config.json").write_text(json.dumps(cfg))
    model = tmp / "model"
    subprocess.run([str(cli), "random-model", str(tmp / "config.json"), "-o", str(model)], check=True, capture_output=True)
    for f in ["hy.tiktoken", "tokenizer_config.json"]:
        shutil.copy(tok_dir / f, model / f)
    out = tmp / "m.gguf"
    subprocess.run([str(cli), "export-gguf", str(model), str(out), "--type", "f16"], check=True, capture_output=True)
    return gguf.GGUFReader(str(out))


def test_gguf_tokenizer_tokens(vocab_gguf, tok):
    tok_dir, ranks, enc = tok
    r = vocab_gguf
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    assert field(r, "tokenizer.ggml.pre") == "hunyuan"      # llama.cpp's LLAMA_VOCAB_PRE_TYPE_HUNYUAN
    tokens = strings(r, "tokenizer.ggml.tokens")
    types = ints(r, "tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == VOCAB
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    for rank in range(N_RANKS):
        assert bytes(decoder[c] for c in tokens[rank]) == enc.decode_single_token_bytes(rank), rank
    assert tokens[N_RANKS:N_RANKS + len(SPECIALS)] == SPECIALS
    assert tokens[N_RANKS + len(SPECIALS):] == [f"[PAD{i}]" for i in range(N_RANKS + len(SPECIALS), VOCAB)]
    # gguf.TokenType: NORMAL 1, CONTROL 3, UNUSED 5 (the converter's choice for ranks / specials / padding)
    assert types == [1] * N_RANKS + [3] * len(SPECIALS) + [5] * (VOCAB - N_RANKS - len(SPECIALS))
    # special ids as the converter writes them: config.json's, bos overridden to <|bos|>
    assert field(r, "tokenizer.ggml.bos_token_id") == 127959
    assert field(r, "tokenizer.ggml.eos_token_id") == 127960
    assert field(r, "tokenizer.ggml.padding_token_id") == 127961
    import json
    assert field(r, "tokenizer.chat_template") == json.loads((tok_dir / "tokenizer_config.json").read_text())["chat_template"]


def converter_merges(ranks):
    """The converter's merge recovery (QwenModel.bpe with max_rank), re-derived from tiktoken's ranks."""
    enc = bytes_to_unicode()
    s = lambda b: "".join(enc[x] for x in b)
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = [bytes([b]) for b in token]
        while True:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                rr = ranks.get(parts[i] + parts[i + 1])
                if rr is not None and (best_rank is None or rr < best_rank):
                    best, best_rank = i, rr
            if best_rank is None or best_rank >= rank:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) == 2:
            merges.append(s(parts[0]) + " " + s(parts[1]))
    return merges


def test_gguf_tokenizer_merges_match_converter(vocab_gguf, tok):
    merges = strings(vocab_gguf, "tokenizer.ggml.merges")
    expected = converter_merges(tok[1])
    assert len(merges) == len(expected)
    bad = next((i for i, (a, b) in enumerate(zip(merges, expected)) if a != b), None)
    assert bad is None, (bad, merges[bad], expected[bad])


def merge_bpe(piece: bytes, merge_rank, token_id, enc_table):
    """llama.cpp's BPE (llm_tokenizer_bpe): byte-level symbols, repeatedly merge the adjacent pair with
    the lowest merge index (leftmost among equals), then look the symbols up in the token list."""
    syms = [enc_table[b] for b in piece]
    while len(syms) > 1:
        best, best_rank = None, None
        for i in range(len(syms) - 1):
            rr = merge_rank.get((syms[i], syms[i + 1]))
            if rr is not None and (best_rank is None or rr < best_rank):
                best, best_rank = i, rr
        if best is None:
            break
        syms[best:best + 2] = [syms[best] + syms[best + 1]]
    return [token_id[s] for s in syms]


def test_gguf_tokenizer_merges_reproduce_tiktoken(vocab_gguf, tok, shared):
    import random
    import unicodedata
    regex = pytest.importorskip("regex")
    enc = tok[2]
    tokens = strings(vocab_gguf, "tokenizer.ggml.tokens")
    merges = strings(vocab_gguf, "tokenizer.ggml.merges")
    merge_rank = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
    token_id = {t: i for i, t in enumerate(tokens)}
    table = bytes_to_unicode()
    pat = regex.compile(PAT)
    texts = ["Hello world! It's 2026: 12345 tokens, naïve café\n\n  indented\tcode();  ",
             "混元大模型是腾讯的开源模型。こんにちは 안녕하세요 🙂🙂",
             " " * 37 + "x" * 53 + "\r\n\r\n" + "ab" * 40]
    rng = random.Random(8)
    for name in ["tinyshakespeare.txt", "sanguo_yanyi.txt"]:
        p = shared / "data" / "corpus" / name
        if p.exists():
            data = p.read_text(encoding="utf-8")
            for _ in range(40):
                a = rng.randrange(len(data) - 400)
                texts.append(data[a:a + rng.randrange(50, 400)])
    cache = {}
    for text in texts:
        text = unicodedata.normalize("NFC", text)
        got = []
        for piece in pat.findall(text):
            if piece not in cache:
                cache[piece] = merge_bpe(piece.encode("utf-8"), merge_rank, token_id, table)
            got += cache[piece]
        assert got == enc.encode_ordinary(text), text[:80]


def test_gguf_without_tokenizer_is_no_vocab(cli, shared, tmp_path):
    out = tmp_path / "m.gguf"
    subprocess.run([str(cli), "export-gguf", str(fixture(shared)), str(out), "--type", "f16"], check=True, capture_output=True)
    r = gguf.GGUFReader(str(out))
    assert field(r, "tokenizer.ggml.model") == "no_vocab"
    assert "tokenizer.ggml.tokens" not in r.fields


def test_gguf_tokenizer_larger_than_model_fails(cli, shared, tok, tmp_path):
    out = tmp_path / "m.gguf"
    p = subprocess.run([str(cli), "export-gguf", str(fixture(shared)), str(out), "--tokenizer", str(tok[0])],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "vocab_size" in p.stderr
    assert not out.exists()
