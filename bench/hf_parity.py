#!/usr/bin/env python3
"""Logit parity between our engine (`hunyuan-cli logits`) and the Hugging Face transformers classes.

Loads each checkpoint folder with the model classes that ship inside the installed `transformers`
package (no hub access, no trust_remote_code), runs one fp32 forward over a token sequence and
compares the [T, V] logits with `hunyuan-cli logits` (and with reference.safetensors when the folder
is a fixture from fixtures/lm/).

transformers (5.x) ships `hunyuan_v1_dense` (HunYuanDenseV1ForCausalLM) and `hunyuan_v1_moe`
(HunYuanMoEV1ForCausalLM). It has NO class for Tencent's Hunyuan-Large (`model_type: "hunyuan"`,
HunYuanForCausalLM, which needs trust_remote_code). Such folders are handled as follows, in memory
only (the files on disk are never changed):

  * `use_cla: false` and `moe_topk > 1` (and `num_shared_expert` 1): mathematically the same network
    as hunyuan_v1_moe, so the config is mapped: model_type -> hunyuan_v1_moe, architectures ->
    HunYuanMoEV1ForCausalLM, head_dim -> hidden_size / num_attention_heads when absent,
    rope_scaling + rope_theta -> rope_parameters (transformers does that last step itself).
    Reported as "mapped".
  * CLA (`use_cla: true`, layers l % cla_share_factor != 0 have no k_proj/v_proj) or top-1 routing
    (Hunyuan-Large keeps the raw softmax weight, hunyuan_v1_moe renormalises it to 1): no class.
    Reported as "no transformers class". With --emulate-large the same mapped hunyuan_v1_moe model is
    loaded and two documented patches are applied to it (CLA: follower layers reuse the roped,
    un-normalised K and the V of the group's first layer and apply their own key_layernorm; top-1:
    no renormalisation). That is then OUR reading of modeling_hunyuan.py on top of the transformers
    classes, not the official code; it matches the official-code reference logits of the CLA fixtures
    (hunyuan-large-tiny, hunyuan-large-tiny-bf16-sharded) to ~2e-6, so it is a usable stand-in.

Token sequences: for a fixture, its reference input_ids; otherwise the first --tokens ids of
`hunyuan-cli tokenize --tokenizer DIR` of the opening of --text (default:
../shared/data/corpus/tinyshakespeare.txt) plus a second sequence of --tokens random ids (seed 0).

Usage (torch and transformers are never CI dependencies):
    /work/cache/torch-venv/bin/pip install transformers
    /work/cache/torch-venv/bin/python bench/hf_parity.py [--cli build/hunyuan-cli] [--tokens 64] \
        [--emulate-large] [--roundtrip] [--json] DIR [DIR ...]
e.g.
    /work/cache/torch-venv/bin/python bench/hf_parity.py models/hunyuan-tiny ../shared/fixtures/lm/*/

Prints one line per (folder, sequence): load status, max |transformers - ours|, max |transformers -
reference| and max |ours - reference| for fixtures, plus missing/unexpected keys reported by
from_pretrained. With --roundtrip also: the transformers model written back with save_pretrained to
a temp folder and read by our engine, max |ours - transformers|. Exit status 1 when a folder that transformers can load differs from ours by more
than --tol (default 1e-4).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import transformers
from transformers import AutoConfig, AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CLI = os.path.join(ROOT, "build", "hunyuan-cli")
DEFAULT_TEXT = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "corpus", "tinyshakespeare.txt"))
NATIVE = ("hunyuan_v1_dense", "hunyuan_v1_moe")


def hunyuan_classes():
    """Names of the Hunyuan model types and causal-LM classes shipped by the installed transformers."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as m
    return {k: v for k, v in m.items() if "hunyuan" in k}


def plan_config(raw, emulate):
    """(mode, config dict for transformers or None, notes). mode: native | mapped | emulated | none."""
    mt = raw.get("model_type")
    if mt in NATIVE:
        notes = []
        if raw.get("head_dim") is None:
            notes.append("config has no head_dim (transformers' hunyuan_v1_* need it)")
        return "native", dict(raw), notes
    if mt != "hunyuan":
        return "none", None, [f"model_type {mt!r} has no transformers class"]
    cla = bool(raw.get("use_cla", False)) and (raw.get("cla_share_factor") or 1) > 1
    topk = raw.get("moe_topk", 1)
    topk_list = topk if isinstance(topk, list) else [topk]
    top1 = any(k == 1 for k in topk_list)
    shared = raw.get("num_shared_expert", 1)
    shared = shared if isinstance(shared, int) else max(shared)
    blockers = []
    if cla:
        blockers.append(f"CLA (cla_share_factor {raw.get('cla_share_factor')})")
    if top1:
        blockers.append("top-1 routing with the raw softmax weight")
    if shared != 1 or not raw.get("use_mixed_mlp_moe", True):
        return "none", None, [f"num_shared_expert {shared} / use_mixed_mlp_moe unsupported by hunyuan_v1_moe"]
    if raw.get("num_experts", 1) <= 1:
        return "none", None, ["dense Hunyuan-Large layout"]
    cfg = dict(raw)
    cfg["model_type"] = "hunyuan_v1_moe"
    cfg["architectures"] = ["HunYuanMoEV1ForCausalLM"]
    if cfg.get("head_dim") is None:
        cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    for k in ("use_cla", "cla_share_factor", "use_mixed_mlp_moe", "num_shared_expert", "use_qk_norm",
              "capacity_factor", "moe_drop_tokens", "moe_random_routing_dropped_token", "torch_dtype"):
        cfg.pop(k, None)
    if not raw.get("use_qk_norm", True):
        return "none", None, ["use_qk_norm false unsupported by hunyuan_v1_moe"]
    notes = ["hunyuan -> hunyuan_v1_moe, head_dim=%d" % cfg["head_dim"]]
    if blockers:
        if not emulate:
            return "none", None, ["no transformers class: " + ", ".join(blockers)]
        return "emulated", cfg, notes + ["PATCHED (not official): " + ", ".join(blockers)]
    return "mapped", cfg, notes


def patch_large(model, raw):
    """Applies the two Hunyuan-Large differences to a loaded HunYuanMoEV1ForCausalLM (see docstring)."""
    from transformers.models.hunyuan_v1_moe import modeling_hunyuan_v1_moe as hm

    factor = (raw.get("cla_share_factor") or 1) if raw.get("use_cla") else 1
    shared_kv = {}

    def attn_forward(self, hidden_states, position_embeddings, attention_mask, cache=None, **kw):
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        q = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        cos, sin = position_embeddings
        group = self.layer_idx // factor
        if self.layer_idx % factor == 0:
            k = self.k_proj(hidden_states).view(shape).transpose(1, 2)
            v = self.v_proj(hidden_states).view(shape).transpose(1, 2)
            q, k = hm.apply_rotary_pos_emb(q, k, cos, sin)
            shared_kv[group] = (k, v)
        else:
            q, _ = hm.apply_rotary_pos_emb(q, q, cos, sin)
            k, v = shared_kv[group]
        q = self.query_layernorm(q)
        k = self.key_layernorm(k)
        out, w = hm.eager_attention_forward(self, q, k, v, attention_mask, scaling=self.scaling)
        return self.o_proj(out.reshape(*hidden_states.shape[:-1], -1).contiguous()), w

    def gate_forward(self, hidden_states):
        hidden_states = hidden_states.reshape(-1, hidden_states.shape[-1]).float()
        logits = self.wg(hidden_states)
        probs = torch.softmax(logits, dim=1, dtype=torch.float)
        w, idx = torch.topk(probs, self.top_k, dim=-1)
        if self.top_k > 1:
            w = w / w.sum(dim=-1, keepdim=True)
        return logits, w.to(logits.dtype), idx

    for mod in model.modules():
        if isinstance(mod, hm.HunYuanMoEV1Attention):
            mod.forward = attn_forward.__get__(mod)
        elif isinstance(mod, hm.HunYuanMoEV1Gate):
            mod.forward = gate_forward.__get__(mod)


def load_hf(path, mode, cfg_dict, raw):
    """Loads the folder with transformers' classes in float32; returns (model, loading_info)."""
    if mode == "native":
        model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    else:
        d = dict(cfg_dict)
        mt = d.pop("model_type")
        config = AutoConfig.for_model(mt, **d)
        # eager attention: the patched forward needs the materialised causal mask
        model, info = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=torch.float32,
                                                           output_loading_info=True,
                                                           attn_implementation="eager" if mode == "emulated" else None)
        if mode == "emulated":
            patch_large(model, raw)
    model.eval()
    return model, info


def hf_logits(model, ids):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0].float().numpy()


def our_logits(cli, path, ids, threads):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.npy")
        subprocess.run([cli, "logits", path, "--tokens", ",".join(map(str, ids)), "-o", out, "-t", str(threads)],
                       check=True, stdout=subprocess.DEVNULL)
        return np.load(out)


def tokenize(cli, tokenizer, text, n):
    r = subprocess.run([cli, "tokenize", "--tokenizer", tokenizer], input=text.encode(), capture_output=True,
                       check=True)
    return [int(x) for x in r.stdout.split()][:n]


def sequences(path, raw, args):
    ref = os.path.join(path, "reference.safetensors")
    if os.path.exists(ref):
        from safetensors.numpy import load_file
        r = load_file(ref)
        return [("reference", [int(x) for x in r["input_ids"]], r["logits"])]
    seqs = []
    tok = path if os.path.exists(os.path.join(path, "hy.tiktoken")) else None
    if tok and os.path.exists(args.text):
        with open(args.text, encoding="utf-8") as f:
            text = f.read(4000)
        seqs.append(("shakespeare", tokenize(args.cli, tok, text, args.tokens), None))
    rng = np.random.default_rng(0)
    seqs.append(("random", [int(x) for x in rng.integers(0, raw["vocab_size"], args.tokens)], None))
    return seqs


def maxdiff(a, b):
    if a is None or b is None:
        return None
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def fmt(x):
    return "-" if x is None else (x if isinstance(x, str) else f"{x:.3g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--cli", default=os.environ.get("HUNYUAN_CLI", DEFAULT_CLI))
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--emulate-large", action="store_true")
    ap.add_argument("--roundtrip", action="store_true",
                    help="also save_pretrained the transformers model to a temp folder and run ours on that")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)

    print(f"transformers {transformers.__version__}, torch {torch.__version__}; hunyuan causal-LM classes: "
          f"{hunyuan_classes()}", file=sys.stderr)
    rows, failed = [], False
    for path in args.dirs:
        path = path.rstrip("/")
        with open(os.path.join(path, "config.json")) as f:
            raw = json.load(f)
        mode, cfg, notes = plan_config(raw, args.emulate_large)
        model, info = None, {}
        if cfg is not None:
            try:
                model, info = load_hf(path, mode, cfg, raw)
            except Exception as e:  # report, keep going
                notes.append(f"load failed: {type(e).__name__}: {e}")
                mode = "load-failed"
        for k in ("missing_keys", "unexpected_keys", "mismatched_keys"):
            if info.get(k):
                notes.append(f"{k}: {sorted(map(str, info[k]))[:6]}{' …' if len(info[k]) > 6 else ''}")
        for name, ids, ref in sequences(path, raw, args):
            ours = our_logits(args.cli, path, ids, args.threads)
            hf = None
            if model is not None:
                try:
                    hf = hf_logits(model, ids)
                except Exception as e:
                    notes.append(f"forward failed: {type(e).__name__}: {e}")
            rt = None
            if args.roundtrip and hf is not None and mode in ("native", "mapped"):
                with tempfile.TemporaryDirectory() as tmp:
                    model.save_pretrained(tmp)
                    rt = maxdiff(hf, our_logits(args.cli, tmp, ids, args.threads))
            row = {"dir": path, "seq": name, "T": len(ids), "mode": mode, "resaved_ours_vs_hf": rt,
                   "hf_vs_ours": maxdiff(hf, ours), "hf_vs_ref": maxdiff(hf, ref), "ours_vs_ref": maxdiff(ours, ref),
                   "logits_absmax": float(np.abs(ours).max()), "notes": notes}
            if mode in ("native", "mapped") and not (isinstance(row["hf_vs_ours"], float)
                                                    and row["hf_vs_ours"] <= args.tol):
                failed = True
            rows.append(row)
            if not args.json:
                label = os.path.basename(path)
                if label == "model":  # a trainer run folder: run/model
                    label = os.path.basename(os.path.dirname(path)) + "/model"
                first = sum(r["dir"] == path for r in rows) == 1
                print(f"{label:34s} {name:11s} T={len(ids):3d} {mode:11s} "
                      f"hf-ours {fmt(row['hf_vs_ours']):>9s}  hf-ref {fmt(row['hf_vs_ref']):>9s}  "
                      f"ours-ref {fmt(row['ours_vs_ref']):>9s}  |logits|max {row['logits_absmax']:.3g}"
                      + (f"  resaved: hf-ours {fmt(rt)}" if args.roundtrip else ""))
                if first and notes:
                    print("    " + "; ".join(notes))
    if args.json:
        print(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                          "classes": hunyuan_classes(), "rows": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
