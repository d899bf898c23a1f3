#!/usr/bin/env python3
"""PyTorch-on-CPU anchor for the Hunyuan3D-1.0 sparse-view reconstruction model (SVRM, issue #6).

A compact re-implementation of the SVRM's inference path, written from the conventions listed in
fixtures/svrm/svrm-tiny/README.md (which cites the official file and line for each) and checked
against that fixture's reference outputs. It loads what our engine loads: a checkpoint folder with
`model.safetensors` under the official state-dict names (f32/f16/bf16, widened to f32) and an
optional `config.json` in the fixture layout (absent keys = the released model's sizes), e.g. the
full-size random model of `hunyuan-cli svrm-random`. Attention goes through
torch.nn.functional.scaled_dot_product_attention (the official attention materialises full score
matrices, ~20 GB for the triplane self-attention, so it is not usable as a CPU baseline).

Stages: image encoder (DINOv2 ViT-B/14 with camera-modulated AdaNorm) -> triplane transformer
(cross-attn to the interleaved image tokens, self-attn, GEGLU FF) -> Linear upsampler + pixel
shuffle -> triplane decoder (bilinear grid_sample on 3 planes, concatenated, MLP) over a G^3 grid in
x-slices (no normals, like `hunyuan-cli svrm-eval --grid`).

Modes
  --check FIXTURE_DIR                 max abs errors vs reference.safetensors (tokens, triplane, sdf, rgb,
                                      features, normals, sdf_grid and the intermediates); exit 1 above 1e-4
                                      (1e-3 for sdf_grad, a finite difference divided by 0.01).
  --make-inputs OUT.safetensors       fixture-style inputs for a model: images f32 [7,3,S,S] (seeded
                                      random pixels, preprocessed as the predictor does) and cameras f32
                                      [7,20] (the predictor's 6 orbit cameras + a zero condition camera).
  --bench MODEL_DIR [--inputs F] --resolution 384 --threads 2 --json [--save OUT.safetensors]
                                      per-stage seconds, FLOPs and peak RSS as one JSON object on stdout;
                                      --save writes encoder_tokens / triplane / sdf_grid as svrm-eval does.
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
from safetensors.numpy import save_file
from safetensors.torch import load_file

ENC = "img_encoder.model."
TRI = "img_to_triplane_decoder."
TRIB = "img_to_triplane_decoder.img_to_triplane_decoder.transformer_blocks."


# --------------------------------------------------------------------------------------------- config

class Config:
    """Sizes; defaults are the released model's (svrm.yaml + dinov2_vitb14 + 504 px inputs)."""

    def __init__(self, j=None):
        self.table_img = 518
        self.patch = 14
        self.width = 768
        self.depth = 12
        self.heads = 12
        self.mlp_ratio = 4.0
        self.offset = 0.1
        self.ada_eps = 1e-6
        self.P = 64
        self.W = 1024
        self.tri_heads = 16
        self.tri_head_dim = 64
        self.tri_depth = 16
        self.C = 120
        self.up = 4
        self.ff_mult = 4
        self.block_eps = 1e-5
        self.final_eps = 1e-6
        self.dec_hidden = 64
        self.dec_layers = 2
        self.sphere = None
        self.box_warp = 1.2
        self.box_min = -0.6
        self.box_max = 0.6
        self.views = 7
        self.image_size = 504
        if not j:
            return
        p = j.get("model", {}).get("params", j)
        enc = p.get("img_encoder_config", {})
        vk = enc.get("vit_kwargs", {})
        self.table_img = vk.get("img_size", self.table_img)
        self.patch = vk.get("patch_size", self.patch)
        self.width = vk.get("embed_dim", self.width)
        self.depth = vk.get("depth", self.depth)
        self.heads = vk.get("num_heads", self.heads)
        self.mlp_ratio = vk.get("mlp_ratio", self.mlp_ratio)
        self.offset = vk.get("interpolate_offset", self.offset)
        self.ada_eps = enc.get("adanorm_eps", self.ada_eps)
        tri = p.get("img_to_triplane_config", {})
        tp = tri.get("params", {})
        self.P = tp.get("pos_emb_size", self.P)
        self.W = tp.get("pos_emb_dim", self.W)
        self.tri_heads = tp.get("n_heads", self.tri_heads)
        self.tri_head_dim = tp.get("d_head", self.tri_head_dim)
        self.tri_depth = tp.get("depth", self.tri_depth)
        self.C = tp.get("triplane_dim", self.C)
        self.up = tri.get("upsample_ratio", self.up)
        self.ff_mult = tri.get("ff_mult", self.ff_mult)
        self.block_eps = tri.get("block_layernorm_eps", self.block_eps)
        self.final_eps = tri.get("final_layernorm_eps", self.final_eps)
        ren = p.get("render_config", {})
        dec = ren.get("decoder", {})
        self.dec_hidden = dec.get("hidden_dim", self.dec_hidden)
        self.dec_layers = dec.get("num_layers", self.dec_layers)
        self.sphere = dec.get("sphere_prior_radius")
        rk = ren.get("rendering_kwargs", {})
        self.box_warp = rk.get("box_warp", self.box_warp)
        self.box_min = rk.get("sampler_bbox_min", self.box_min)
        self.box_max = rk.get("sampler_bbox_max", self.box_max)
        s = j.get("shapes", {})
        self.image_size = s.get("input_size", self.image_size)
        self.views = s.get("num_views", self.views)

    @property
    def table_grid(self):
        return self.table_img // self.patch


def load_model(model_dir):
    cfg_path = os.path.join(model_dir, "config.json")
    cfg = Config(json.load(open(cfg_path)) if os.path.exists(cfg_path) else None)
    w = {k: (v if v.dtype == torch.float32 else v.float())
         for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    return cfg, w


# ---------------------------------------------------------------------------------------------- model

def _lin(x, w, name, bias=True):
    return F.linear(x, w[name + ".weight"], w.get(name + ".bias") if bias else None)


def _sdpa_heads(q, k, v, heads):
    """q [Nq, H*d], k/v [Nk, H*d] (heads split as (h d)) -> [Nq, H*d] via SDPA."""
    nq, nk = q.shape[0], k.shape[0]
    d = q.shape[1] // heads
    qh = q.view(nq, heads, d).transpose(0, 1)
    kh = k.view(nk, heads, d).transpose(0, 1)
    vh = v.view(nk, heads, d).transpose(0, 1)
    return F.scaled_dot_product_attention(qh, kh, vh).transpose(0, 1).reshape(nq, heads * d)


def position_table(cfg, w, g):
    """[1 + g², D]: the patch part of the table resized as the official interpolate_pos_encoding does."""
    pos = w[ENC + "pos_embed"][0]
    n, d = cfg.table_grid, cfg.width
    if g == n:
        return pos
    sf = (g + cfg.offset) / n
    patch = pos[1:].reshape(1, n, n, d).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=(sf, sf), mode="bicubic", antialias=False, align_corners=False)
    assert patch.shape[-2:] == (g, g), patch.shape
    return torch.cat([pos[:1], patch.permute(0, 2, 3, 1).reshape(g * g, d)], dim=0)


def encode_images(cfg, w, images, cameras, trace=None):
    """images [V,3,S,S], cameras [V,20] -> tokens [V, 1+g², D] (after the final AdaNorm)."""
    v, s = images.shape[0], images.shape[-1]
    d, g = cfg.width, s // cfg.patch
    pos = position_table(cfg, w, g)
    x = F.conv2d(images, w[ENC + "patch_embed.proj.weight"], w[ENC + "patch_embed.proj.bias"], stride=cfg.patch)
    x = x.flatten(2).transpose(1, 2)                                    # [V, g², D]
    cls = w[ENC + "cls_token"].expand(v, 1, d)
    x = torch.cat([cls, x], dim=1) + pos
    if trace:
        trace("enc_pos_embed", pos[None])
        trace("enc_tokens_in", x)
    cam = _lin(F.silu(_lin(cameras, w, ENC + "cam_embed.0")), w, ENC + "cam_embed.2")
    if trace:
        trace("enc_cam_emb", cam)
    cond = F.silu(cam)

    def ada(x, name):
        shift, scale = _lin(cond, w, name + ".adaLN_modulation.1").chunk(2, dim=-1)
        return F.layer_norm(x, (d,), eps=cfg.ada_eps) * (1 + scale[:, None]) + shift[:, None]

    heads, hd = cfg.heads, d // cfg.heads
    t = x.shape[1]
    for i in range(cfg.depth):
        b = f"{ENC}blocks.{i}."
        h = ada(x, b + "norm1")
        qkv = _lin(h, w, b + "attn.qkv").view(v, t, 3, heads, hd).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(v, t, d)
        x = x + w[b + "ls1.gamma"] * _lin(a, w, b + "attn.proj")
        h = ada(x, b + "norm2")
        x = x + w[b + "ls2.gamma"] * _lin(F.gelu(_lin(h, w, b + "mlp.fc1")), w, b + "mlp.fc2")
        if trace:
            trace(f"enc_block_out.{i}", x)
    return ada(x, ENC + "norm")


def triplane_transformer(cfg, w, tokens, trace=None):
    """tokens [V, T, D] -> triplane tokens [3P², W] (after the final LayerNorm)."""
    v, t, d = tokens.shape
    ctx = tokens.transpose(0, 1).reshape(t * v, d)                      # '(b m) l d -> b (l m) d'
    x = w[TRI + "pos_emb"][0]
    W, heads = cfg.W, cfg.tri_heads
    for i in range(cfg.tri_depth):
        b = f"{TRIB}{i}."
        h = F.layer_norm(x, (W,), w[b + "norm1.weight"], w[b + "norm1.bias"], cfg.block_eps)
        a = _sdpa_heads(_lin(h, w, b + "attn1.to_q", False), _lin(ctx, w, b + "attn1.to_k", False),
                        _lin(ctx, w, b + "attn1.to_v", False), heads)
        x = x + _lin(a, w, b + "attn1.to_out.0")
        h = F.layer_norm(x, (W,), w[b + "norm2.weight"], w[b + "norm2.bias"], cfg.block_eps)
        a = _sdpa_heads(_lin(h, w, b + "attn2.to_q", False), _lin(h, w, b + "attn2.to_k", False),
                        _lin(h, w, b + "attn2.to_v", False), heads)
        x = x + _lin(a, w, b + "attn2.to_out.0")
        h = F.layer_norm(x, (W,), w[b + "norm3.weight"], w[b + "norm3.bias"], cfg.block_eps)
        u, gate = _lin(h, w, b + "ff.net.0.proj").chunk(2, dim=-1)
        x = x + _lin(u * F.gelu(gate), w, b + "ff.net.2")
        if trace:
            trace(f"tri_block_out.{i}", x[None])
    n = TRI + "img_to_triplane_decoder.norm"
    return F.layer_norm(x, (W,), w[n + ".weight"], w[n + ".bias"], cfg.final_eps)


def upsample(cfg, w, tok, trace=None):
    """[3P², W] -> triplane [3, C, rP, rP] (Linear, then pixel shuffle)."""
    P, r, C = cfg.P, cfg.up, cfg.C
    up = _lin(tok, w, TRI + "upsampler").view(3, P, P, C * r * r)
    if trace:
        trace("upsampler_out", up)
    return up.view(3, P, P, C, r, r).permute(0, 3, 1, 4, 2, 5).reshape(3, C, P * r, P * r).contiguous()


def sample_features(cfg, planes, pts):
    """pts [N,3] world -> [N, 3C]: plane 0 (x,y), 1 (x,z), 2 (z,y), bilinear, zeros, align_corners False."""
    p = pts * (2.0 / cfg.box_warp)
    uv = torch.stack([p[:, [0, 1]], p[:, [0, 2]], p[:, [2, 1]]])[:, None]   # [3, 1, N, 2]
    f = F.grid_sample(planes, uv, mode="bilinear", padding_mode="zeros", align_corners=False)  # [3, C, 1, N]
    return f[:, :, 0].permute(2, 0, 1).reshape(pts.shape[0], -1)


def decode(cfg, w, planes, pts, features_out=None, rgb=True):
    f = sample_features(cfg, planes, pts)
    if features_out is not None:
        features_out.append(f)
    h = f
    for i in range(cfg.dec_layers):
        h = _lin(h, w, f"render.decoder.net.{2 * i}")
        if i < cfg.dec_layers - 1:
            h = F.relu(h)
    sdf = h[:, :1]
    if cfg.sphere is not None:
        sdf = sdf + pts.norm(dim=-1, keepdim=True) - cfg.sphere
    return sdf, (torch.sigmoid(h[:, 1:4]) * 1.002 - 0.001 if rgb else None)


def sdf_grad(cfg, w, planes, pts, sdf, eps=0.01):
    g = []
    for a in range(3):
        off = pts.clone()
        off[:, a] += eps
        off = off.clamp(cfg.box_min, cfg.box_max)
        g.append((decode(cfg, w, planes, off, rgb=False)[0] - sdf) / eps)
    g = torch.cat(g, dim=1)
    return g, F.normalize(g, dim=-1, eps=1e-12)


def sdf_grid(cfg, w, planes, n, slices=2):
    """[n,n,n] with sdf[i,j,k] at (x_i, y_j, z_k), x = torch.linspace(min, max, n); `slices` x-planes per chunk."""
    # grid_sample reads a channels-last copy about 2x faster on the CPU than the [3, C, R, R] layout
    # (each tap then reads C contiguous floats); same values.
    planes = planes.contiguous(memory_format=torch.channels_last)
    ax = torch.linspace(cfg.box_min, cfg.box_max, n)
    yz = torch.stack(torch.meshgrid(ax, ax, indexing="ij"), dim=-1).reshape(-1, 2)
    out = torch.empty(n, n, n)
    for i0 in range(0, n, slices):
        i1 = min(n, i0 + slices)
        xs = ax[i0:i1].repeat_interleave(n * n)[:, None]
        pts = torch.cat([xs, yz.repeat(i1 - i0, 1)], dim=1)
        out[i0:i1] = decode(cfg, w, planes, pts, rgb=False)[0].view(i1 - i0, n, n)
    return out


# ---------------------------------------------------------------------------------------------- FLOPs

def stage_flops(cfg, views, s, grid):
    """Multiply-adds x 2 of the GEMM-like work per stage (biases, norms, softmax not counted)."""
    g = s // cfg.patch
    t, d, hid = 1 + g * g, cfg.width, int(cfg.width * cfg.mlp_ratio)
    r = views * t
    enc = 2 * views * g * g * 3 * cfg.patch ** 2 * d
    enc += cfg.depth * (2 * r * d * 3 * d + 2 * r * d * d + 2 * 2 * r * d * hid + 2 * 2 * views * t * t * d)
    q, W, inner, nc = 3 * cfg.P ** 2, cfg.W, cfg.tri_heads * cfg.tri_head_dim, r
    ff = cfg.ff_mult * W
    blk = (2 * q * W * inner + 2 * 2 * nc * d * inner + 2 * 2 * q * nc * inner + 2 * q * inner * W
           + 4 * 2 * q * W * inner + 2 * 2 * q * q * inner + 2 * q * W * 2 * ff + 2 * q * ff * W)
    tri = cfg.tri_depth * blk
    ups = 2 * q * W * cfg.C * cfg.up ** 2
    dec = grid ** 3 * 2 * (3 * cfg.C * cfg.dec_hidden + (cfg.dec_layers - 2) * cfg.dec_hidden ** 2 + cfg.dec_hidden * 4)
    return {"encoder": enc, "triplane_transformer": tri, "upsampler": ups, "grid_decode": dec}


# ---------------------------------------------------------------------------------------------- modes

def read_st(path):
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def check(fixture):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    cfg, w = load_model(fixture)
    inp = read_st(os.path.join(fixture, "inputs.safetensors"))
    ref = read_st(os.path.join(fixture, "reference.safetensors"))
    got = {}

    def trace(name, t):
        got[name] = t.clone()

    with torch.inference_mode():
        tok = encode_images(cfg, w, inp["images"].float(), inp["cameras"].float(), trace)
        got["encoder_tokens"] = tok
        tt = triplane_transformer(cfg, w, tok, trace)
        got["triplane_tokens"] = tt[None]
        planes = upsample(cfg, w, tt, trace)
        got["triplane"] = planes[None]
        pts = ref["points"].float()
        feats = []
        sdf, rgb = decode(cfg, w, planes, pts, feats)
        got.update(sdf=sdf, rgb=rgb, features=feats[0])
        got["sdf_grad"], got["normal"] = sdf_grad(cfg, w, planes, pts, sdf)
        grid = ref["sdf_grid"].shape[0]
        got["sdf_grid"] = sdf_grid(cfg, w, planes, grid)
    errs, ok = {}, True
    for name, want in ref.items():
        if name not in got:
            continue
        a, b = got[name].float(), want.float()
        if tuple(a.shape) != tuple(b.shape):
            errs[name] = f"shape {tuple(a.shape)} vs {tuple(b.shape)}"
            ok = False
            continue
        e = (a - b).abs().max().item()
        errs[name] = e
        ok &= e <= (1e-3 if name == "sdf_grad" else 1e-4)
    missing = sorted(set(ref) - set(got) - {"points", "mc_vertices", "mc_faces"})
    print(json.dumps({"fixture": os.path.basename(os.path.normpath(fixture)), "max_abs_err": errs,
                      "not_compared": missing, "pass": bool(ok)}, indent=1))
    return ok


def predictor_cameras(views=7):
    """[views, 20]: the predictor's c2w (row-major 4x4) + normalised intrinsics for azimuths 0, 60, …,
    elevation 0, distance 1.5; the last (condition) camera all zeros."""
    cams = np.zeros((views, 20), np.float32)
    for i in range(views - 1):
        el, az = 0.0, math.radians(60 * i)
        pos = 1.5 * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        fwd = -pos / np.linalg.norm(pos)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        up /= np.linalg.norm(up)
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -fwd, pos
        cams[i, :16] = m.reshape(-1)
        cams[i, 16:] = (35 / 32, 35 / 32, 0.5, 0.5)
    return cams


def make_inputs(model_dir, out, size, seed):
    cfg = Config(json.load(open(os.path.join(model_dir, "config.json")))) if model_dir and os.path.exists(
        os.path.join(model_dir, "config.json")) else Config()
    s = size or cfg.image_size
    rng = np.random.default_rng(seed)
    u8 = rng.integers(0, 256, size=(cfg.views, 3, s, s), dtype=np.uint8)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    images = ((u8.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)
    save_file({"images": np.ascontiguousarray(images), "cameras": predictor_cameras(cfg.views)}, out,
              metadata={"producer": "bench/svrm_torch.py --make-inputs", "seed": str(seed)})
    print(f"{out}: images {list(images.shape)}, cameras [{cfg.views},20]", file=sys.stderr)


def bench(model_dir, inputs, resolution, threads, slices, save=None):
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cfg, w = load_model(model_dir)
    st = {"load": time.perf_counter() - t0}
    if inputs:
        inp = read_st(inputs)
        images, cameras = inp["images"].float(), inp["cameras"].float()
    else:
        s = cfg.image_size
        images = torch.from_numpy(np.random.default_rng(1).standard_normal((cfg.views, 3, s, s), np.float32))
        cameras = torch.from_numpy(predictor_cameras(cfg.views))
    # sgemm of the triplane projections' shape, the same run: torch's own GEMM rate (MKL) at these threads.
    a, b = torch.randn(3 * cfg.P ** 2, cfg.W), torch.randn(cfg.W, cfg.W)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(3))
    sgemm = 2 * a.shape[0] * cfg.W * cfg.W / best / 1e9
    del a, b
    last = [time.perf_counter()]

    def progress(name, _t=None):  # per-block times on stderr, like `svrm-eval --timings`
        now = time.perf_counter()
        print(f"  {name}: {now - last[0]:.3f} s", file=sys.stderr, flush=True)
        last[0] = now

    with torch.inference_mode():
        t = last[0] = time.perf_counter()
        tok = encode_images(cfg, w, images, cameras, progress)
        st["encoder"] = time.perf_counter() - t
        progress("encoder_tokens")
        t = time.perf_counter()
        tt = triplane_transformer(cfg, w, tok, progress)
        st["triplane_transformer"] = time.perf_counter() - t
        t = time.perf_counter()
        planes = upsample(cfg, w, tt)
        st["upsampler"] = time.perf_counter() - t
        t = last[0] = time.perf_counter()
        grid = sdf_grid(cfg, w, planes, resolution, slices)
        st["grid_decode"] = time.perf_counter() - t
        progress(f"sdf grid {resolution}^3")
    inside = (grid < 0).float().mean().item()
    if save:  # same names/layouts as `hunyuan-cli svrm-eval` writes, for a full-size parity check
        save_file({"encoder_tokens": tok.contiguous().numpy(), "triplane": planes[None].contiguous().numpy(),
                   "sdf_grid": grid.numpy()}, save, metadata={"producer": "bench/svrm_torch.py --bench"})
    fl = stage_flops(cfg, images.shape[0], images.shape[-1], resolution)
    total = sum(st[k] for k in fl)
    return {"engine": f"pytorch {torch.__version__} eager f32 (SDPA)", "model": model_dir, "inputs": inputs,
            "threads": threads, "resolution": resolution, "image_size": images.shape[-1],
            "seconds": {k: round(v, 3) for k, v in st.items()}, "network_seconds": round(total, 3),
            "gflop": {k: round(v / 1e9, 1) for k, v in fl.items()},
            "gflops_per_s": {k: round(fl[k] / st[k] / 1e9, 1) for k in fl},
            "torch_sgemm_gflops": round(sgemm, 1),
            "grid_fraction_inside": round(inside, 4),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", metavar="FIXTURE_DIR")
    g.add_argument("--bench", metavar="MODEL_DIR")
    g.add_argument("--make-inputs", metavar="OUT")
    ap.add_argument("--model", help="(--make-inputs) model folder whose config gives the image size")
    ap.add_argument("--size", type=int, default=0, help="(--make-inputs) image side (default: the model's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inputs", help="(--bench) safetensors with images [V,3,S,S] and cameras [V,20]")
    ap.add_argument("--resolution", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slices", type=int, default=2, help="x-slices of the grid per decode chunk")
    ap.add_argument("--save", help="(--bench) also write encoder_tokens, triplane, sdf_grid to this safetensors")
    ap.add_argument("--json", action="store_true", help="(always JSON)")
    a = ap.parse_args()
    if a.check:
        sys.exit(0 if check(a.check) else 1)
    if a.make_inputs:
        make_inputs(a.model, a.make_inputs, a.size, a.seed)
        return
    print(json.dumps(bench(a.bench, a.inputs, a.resolution, a.threads, a.slices, a.save)))


if __name__ == "__main__":
    main()
