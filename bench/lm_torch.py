#!/usr/bin/env python3
"""PyTorch eager float32 anchor for the Hunyuan language models (BENCHMARKS.md, issue #8).

A compact, independent re-implementation of the three architectures our engine runs, written from the
conventions in Sources/HunyuanLM (Config.swift, HunyuanAttention.swift, HunyuanMoE.swift) and checked
against the reference logits in fixtures/lm/*:

  * HunYuanMoEV1ForCausalLM (Hunyuan-A13B family, transformers `hunyuan_v1_moe`): top-k routing
    renormalised over the chosen experts, shared expert, QK-norm, alpha-scaled ("dynamic") RoPE.
  * HunYuanForCausalLM (Hunyuan-Large, Tencent's modeling_hunyuan.py): the same plus CLA (layers
    l % cla_share_factor != 0 reuse the K/V projections of the group's first layer, each applying its
    own key_layernorm), top-1 keeps the raw router probability, top-k > 1 renormalises.
  * HunYuanDenseV1ForCausalLM: one SwiGLU MLP per layer.

Layer: x += o_proj(attn(RoPE-then-QKnorm(q, k), v)) on RMSNorm(x); x += FFN(RMSNorm(x)); logits = lm_head(RMSNorm(x)).
RoPE is NeoX (rotate-half) with base = rope_theta * alpha ** (d / (d - 2)).

Modes
  --check FIXTURE_DIR   logits of the whole prompt vs reference.safetensors (and the KV-cache decode
                        path: prefill the first half, decode the rest one token at a time; greedy ids).
  --bench MODEL_DIR -p 128 -n 64 -t 1,2 --reps 3 --json
                        one JSON array shaped like `hunyuan-cli bench --json`: prefill = one forward over
                        p random tokens keeping only the last logits; decode = n greedy single-token steps
                        with a KV cache after the prompt; mean and sample sd over reps after a warm-up.

Torch is not a CI dependency; run with a venv that has torch, numpy and safetensors
(bench/torch-anchor.sh makes one under $HUNYUAN_BENCH_CACHE).
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


# --------------------------------------------------------------------------------------------- config

class Config:
    def __init__(self, j):
        arch = (j.get("architectures") or [None])[0]
        if arch is None:
            arch = {"hunyuan": "HunYuanForCausalLM", "hunyuan_v1_moe": "HunYuanMoEV1ForCausalLM",
                    "hunyuan_v1_dense": "HunYuanDenseV1ForCausalLM"}[j["model_type"]]
        if arch not in ("HunYuanForCausalLM", "HunYuanMoEV1ForCausalLM", "HunYuanDenseV1ForCausalLM"):
            raise SystemExit(f"unsupported architecture {arch}")
        self.arch = arch
        self.layers = j["num_hidden_layers"]
        self.hidden = j["hidden_size"]
        self.heads = j["num_attention_heads"]
        self.kv_heads = j.get("num_key_value_heads") or self.heads
        self.head_dim = j.get("head_dim") or j.get("attention_head_dim") or self.hidden // self.heads
        self.inter = j["intermediate_size"]
        self.vocab = j["vocab_size"]
        self.eps = j.get("rms_norm_eps", 1e-5)
        rope = j.get("rope_scaling") or j.get("rope_parameters") or {}
        self.theta = j.get("rope_theta") or rope.get("rope_theta") or 10000.0
        self.alpha = rope.get("alpha", 1.0) or 1.0
        self.tied = j.get("tie_word_embeddings", True)
        self.bias = j.get("attention_bias", False)
        v1 = arch != "HunYuanForCausalLM"
        self.qk_norm = j.get("use_qk_norm", v1)
        self.moe = arch != "HunYuanDenseV1ForCausalLM"

        def per_layer(key, default):
            v = j.get(key, default)
            if isinstance(v, list):
                return v * self.layers if len(v) == 1 else v
            return [v] * self.layers

        if self.moe:
            self.experts = j["num_experts"]
            self.topk = per_layer("moe_topk", None)
            self.moe_inter = per_layer("moe_intermediate_size", self.inter)
            self.shared = per_layer("num_shared_expert", 1)
            if not j.get("use_mixed_mlp_moe", True):
                self.shared = [0] * self.layers
        self.cla = arch == "HunYuanForCausalLM" and j.get("use_cla", False)
        self.cla_factor = max(1, j.get("cla_share_factor", 1) or 1) if self.cla else 1

    @property
    def rope_base(self):
        d = self.head_dim
        return self.theta if self.alpha == 1 else self.theta * self.alpha ** (d / (d - 2))

    def renormalize(self, layer):
        return self.arch == "HunYuanMoEV1ForCausalLM" or self.topk[layer] > 1


def load_weights(model_dir):
    """Every tensor of the checkpoint folder (single file or shards), widened to float32."""
    files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors") and f != "reference.safetensors")
    if not files:
        raise SystemExit(f"{model_dir}: no .safetensors")
    w = {}
    for f in files:
        for k, v in load_file(os.path.join(model_dir, f)).items():
            w[k] = v if v.dtype == torch.float32 else v.float()
    return w


# ---------------------------------------------------------------------------------------------- model

# scaled_dot_product_attention broadcasts K/V heads itself since torch 2.5 (enable_gqa).
GQA_SDPA = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)

def rms_norm(x, weight, eps):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class HunyuanTorch:
    """Functional model over the checkpoint's own tensors (official names)."""

    def __init__(self, cfg, w):
        self.c = cfg
        self.w = w
        d = cfg.head_dim
        inv = 1.0 / (cfg.rope_base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        self.inv_freq = inv
        self.lm_head = w["model.embed_tokens.weight"] if cfg.tied or "lm_head.weight" not in w else w["lm_head.weight"]
        self.max_pos = 0
        self._grow_rope(4096)

    def _grow_rope(self, n):
        if n <= self.max_pos:
            return
        pos = torch.arange(n, dtype=torch.float64)
        f = torch.outer(pos, self.inv_freq)
        emb = torch.cat((f, f), dim=-1)
        self.cos, self.sin = emb.cos().float(), emb.sin().float()
        self.max_pos = n

    def L(self, l, s):
        return self.w.get(f"model.layers.{l}.{s}")

    def new_cache(self, max_len):
        """Per KV group: keys (roped, RMS-normalised without weight when QK-norm) and values, [kv, T, d]."""
        c = self.c
        groups = (c.layers + c.cla_factor - 1) // c.cla_factor
        shape = (c.kv_heads, max_len, c.head_dim)
        return {"k": [torch.empty(shape) for _ in range(groups)], "v": [torch.empty(shape) for _ in range(groups)],
                "len": 0}

    def attention(self, l, xn, pos0, cache):
        c = self.c
        t = xn.shape[0]
        nh, nkv, hd = c.heads, c.kv_heads, c.head_dim
        cos, sin = self.cos[pos0:pos0 + t], self.sin[pos0:pos0 + t]
        q = F.linear(xn, self.L(l, "self_attn.q_proj.weight"), self.L(l, "self_attn.q_proj.bias"))
        q = q.view(t, nh, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        if c.qk_norm:
            # The cache holds keys normalised without weight; this layer's key_layernorm weight is
            # folded into its queries (q . (w * k) == (q * w) . k).
            q = rms_norm(q, self.L(l, "self_attn.query_layernorm.weight"), c.eps)
            q = q * self.L(l, "self_attn.key_layernorm.weight")
        g = l // c.cla_factor
        if l % c.cla_factor == 0:  # owns K/V
            k = F.linear(xn, self.L(l, "self_attn.k_proj.weight"), self.L(l, "self_attn.k_proj.bias"))
            v = F.linear(xn, self.L(l, "self_attn.v_proj.weight"), self.L(l, "self_attn.v_proj.bias"))
            k = k.view(t, nkv, hd).transpose(0, 1)
            v = v.view(t, nkv, hd).transpose(0, 1)
            k = k * cos + rotate_half(k) * sin
            if c.qk_norm:
                k = rms_norm(k, None, c.eps)
            cache["k"][g][:, pos0:pos0 + t] = k
            cache["v"][g][:, pos0:pos0 + t] = v
        keys = cache["k"][g][:, :pos0 + t]
        vals = cache["v"][g][:, :pos0 + t]
        kw = {}
        if nkv != nh:
            if GQA_SDPA:
                kw["enable_gqa"] = True
            else:
                keys = keys.repeat_interleave(nh // nkv, dim=0)
                vals = vals.repeat_interleave(nh // nkv, dim=0)
        if t == 1:
            o = F.scaled_dot_product_attention(q, keys, vals, **kw)
        elif pos0 == 0:
            o = F.scaled_dot_product_attention(q, keys, vals, is_causal=True, **kw)
        else:
            mask = torch.ones(t, pos0 + t, dtype=torch.bool).tril(diagonal=pos0)
            o = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask, **kw)
        o = o.transpose(0, 1).reshape(t, nh * hd)
        return F.linear(o, self.L(l, "self_attn.o_proj.weight"), self.L(l, "self_attn.o_proj.bias"))

    @staticmethod
    def swiglu(x, prefix, w):
        g = F.linear(x, w[prefix + "gate_proj.weight"])
        u = F.linear(x, w[prefix + "up_proj.weight"])
        return F.linear(F.silu(g) * u, w[prefix + "down_proj.weight"])

    def ffn(self, l, xn):
        c, w = self.c, self.w
        p = f"model.layers.{l}.mlp."
        if not c.moe:
            return self.swiglu(xn, p, w)
        probs = torch.softmax(F.linear(xn, w[p + "gate.wg.weight"]), dim=-1)
        k = c.topk[l]
        top_w, top_i = torch.topk(probs, k, dim=-1)
        if c.renormalize(l):
            top_w = top_w / top_w.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float32).eps)
        out = self.swiglu(xn, p + "shared_mlp.", w) if c.shared[l] > 0 else torch.zeros_like(xn)
        if xn.shape[0] == 1:
            for j in range(k):
                e = int(top_i[0, j])
                out = out + top_w[0, j] * self.swiglu(xn, f"{p}experts.{e}.", w)
            return out
        for e in torch.unique(top_i).tolist():
            tok, slot = torch.nonzero(top_i == e, as_tuple=True)
            y = self.swiglu(xn[tok], f"{p}experts.{e}.", w)
            out.index_add_(0, tok, y * top_w[tok, slot].unsqueeze(-1))
        return out

    def forward(self, ids, cache, all_logits=False):
        """ids: 1-D LongTensor of new tokens at positions cache['len']..; returns logits of the last
        token [V] (or of every token [T, V])."""
        c = self.c
        pos0, t = cache["len"], ids.shape[0]
        self._grow_rope(pos0 + t)
        x = self.w["model.embed_tokens.weight"][ids]
        for l in range(c.layers):
            x = x + self.attention(l, rms_norm(x, self.L(l, "input_layernorm.weight"), c.eps), pos0, cache)
            x = x + self.ffn(l, rms_norm(x, self.L(l, "post_attention_layernorm.weight"), c.eps))
        cache["len"] = pos0 + t
        h = x if all_logits else x[-1:]
        return F.linear(rms_norm(h, self.w["model.norm.weight"], c.eps), self.lm_head)


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = Config(json.load(f))
    return HunyuanTorch(cfg, load_weights(model_dir))


# ---------------------------------------------------------------------------------------------- modes

def check(fixture):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    m = load_model(fixture)
    ref = {}
    with safe_open(os.path.join(fixture, "reference.safetensors"), "pt") as f:
        for k in f.keys():
            ref[k] = f.get_tensor(k)
    ids = ref["input_ids"].long()
    want = ref["logits"].float()
    t = ids.shape[0]
    with torch.inference_mode():
        cache = m.new_cache(t + ref["greedy_ids"].numel() + 1)
        full = m.forward(ids, cache, all_logits=True)
        err_full = (full - want).abs().max().item()
        # KV-cache path: first half in one chunk, then one token at a time.
        h = max(1, t // 2)
        cache = m.new_cache(t + 1)
        rows = [m.forward(ids[:h], cache, all_logits=True)]
        for i in range(h, t):
            rows.append(m.forward(ids[i:i + 1], cache))
        err_kv = (torch.cat(rows) - want).abs().max().item()
        # Greedy continuation.
        g = ref["greedy_ids"].long()
        cache = m.new_cache(t + g.numel() + 1)
        last = m.forward(ids, cache)[-1]
        got = []
        for _ in range(g.numel()):
            nxt = int(torch.argmax(last))
            got.append(nxt)
            last = m.forward(torch.tensor([nxt]), cache)[-1]
    ok = err_full <= 1e-4 and err_kv <= 1e-4 and got == g.tolist()
    print(json.dumps({"fixture": os.path.basename(os.path.normpath(fixture)), "architecture": m.c.arch,
                      "tokens": t, "logits_max_abs_err": err_full, "kv_path_max_abs_err": err_kv,
                      "greedy_match": got == g.tolist(), "pass": ok}))
    return ok


def mean_sd(v):
    if not v:
        return None, None
    mu = sum(v) / len(v)
    if len(v) == 1:
        return mu, 0.0
    return mu, math.sqrt(sum((x - mu) ** 2 for x in v) / (len(v) - 1))


def bench(model_dir, p, n, threads, reps):
    t_load = time.perf_counter()
    m = load_model(model_dir)
    load_s = time.perf_counter() - t_load
    rng = np.random.default_rng(1)
    prompt = torch.from_numpy(rng.integers(0, m.c.vocab, size=max(p, 1))).long()
    params = sum(v.numel() for v in m.w.values())
    rows = []
    for th in threads:
        torch.set_num_threads(th)
        pre, dec = [], []
        with torch.inference_mode():
            for rep in range(reps + 1):  # rep 0 = warm-up
                cache = m.new_cache(prompt.numel() + n + 1)
                t0 = time.perf_counter()
                last = m.forward(prompt if p > 0 else prompt[:1], cache)[-1]
                t1 = time.perf_counter()
                for _ in range(n):
                    last = m.forward(torch.tensor([int(torch.argmax(last))]), cache)[-1]
                t2 = time.perf_counter()
                if rep == 0:
                    continue
                if p > 0:
                    pre.append(p / (t1 - t0))
                if n > 0:
                    dec.append(n / (t2 - t1))
        pm, ps = mean_sd(pre)
        dm, ds = mean_sd(dec)
        r2 = lambda v: None if v is None else round(v, 2)
        print(f"threads {th}: prefill {p}, decode {n}, {reps} reps", file=sys.stderr)
        rows.append({"model": model_dir, "engine": f"pytorch {torch.__version__} eager",
                     "architecture": m.c.arch, "type": "f32", "threads": th, "n_prompt": p, "n_gen": n,
                     "reps": reps, "prefill_tps": r2(pm), "prefill_tps_sd": r2(ps),
                     "decode_tps": r2(dm), "decode_tps_sd": r2(ds),
                     "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                     "params": params, "load_s": round(load_s, 2)})
    print(json.dumps(rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", metavar="FIXTURE_DIR", nargs="+")
    g.add_argument("--bench", metavar="MODEL_DIR")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-t", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="(always JSON; accepted for symmetry with hunyuan-cli)")
    a = ap.parse_args()
    if a.check:
        ok = all([check(d) for d in a.check])
        sys.exit(0 if ok else 1)
    bench(a.bench, a.p, a.n, [int(x) for x in a.t.split(",")], a.reps)


if __name__ == "__main__":
    main()
