#!/usr/bin/env python3
"""U²-Net (rembg's `u2net.onnx`) and U²-NetP in PyTorch, written from the shape table
fixtures/rembg/u2net-full-tensors.json and the u2netp-tiny README (§7, §8), for benchmarking and
full-size parity of our Swift U²-Net (issue #15).

`state_dict` names, shapes and order are those of the official module (checked against the table
with --check): REBNCONV = conv_s1 (3×3, padding = dilation) + bn_s1 + ReLU; RSU-L with
rebnconvin, rebnconv1…L (L dilated by 2), rebnconv(L−1)d…1d; RSU4F with dilations 1, 2, 4, 8;
top level stage1…6, stage5d…1d, side1…6, outconv; outputs sigmoid(d0…d6).

  u2net_torch.py make OUT_DIR [--small] [--seed 15]
      random weights (fixed seed), BatchNorm calibrated on a synthetic image, written as
      OUT_DIR/model.safetensors (PyTorch names) and OUT_DIR/u2net.onnx (torch.onnx.export, the
      TorchScript exporter: opset 11, constant folding, eval, input "input", outputs d0…d6, no dynamic
      axes — the u2netp-tiny README §8.1 settings), plus OUT_DIR/inputs.safetensors (a synthetic
      320×320 RGB image and a small RGBA one, for `hunyuan-cli rembg-eval`).
  u2net_torch.py check [--table PATH]   state_dict names/shapes/order vs the table (full model).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# (depth, in, mid, out) per stage; depth 0 = RSU4F. README §7.6.
WIDTHS = {
    "u2net": [(7, 3, 32, 64), (6, 64, 32, 128), (5, 128, 64, 256), (4, 256, 128, 512), (0, 512, 256, 512),
              (0, 512, 256, 512), (0, 1024, 256, 512), (4, 1024, 128, 256), (5, 512, 64, 128), (6, 256, 32, 64),
              (7, 128, 16, 64)],
    "u2netp": [(7, 3, 16, 64), (6, 64, 16, 64), (5, 64, 16, 64), (4, 64, 16, 64), (0, 64, 16, 64),
               (0, 64, 16, 64), (0, 128, 16, 64), (4, 128, 16, 64), (5, 128, 16, 64), (6, 128, 16, 64),
               (7, 128, 16, 64)],
}
STAGES = ["stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage5d", "stage4d", "stage3d", "stage2d", "stage1d"]


class REBNCONV(nn.Module):
    def __init__(self, cin, cout, d):
        super().__init__()
        self.conv_s1 = nn.Conv2d(cin, cout, 3, padding=d, dilation=d)
        self.bn_s1 = nn.BatchNorm2d(cout)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


def up_like(x, like):
    """Half-pixel bilinear to like's size (the size read from the tensor: Shape/Slice in the graph)."""
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


def pool(x):
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class RSU(nn.Module):
    """RSU-L (L = 7…4): encoder 1…L−1 with max pooling between, L dilated by 2, decoder (L−1)d…1d."""

    def __init__(self, L, cin, mid, cout):
        super().__init__()
        self.L = L
        self.rebnconvin = REBNCONV(cin, cout, 1)
        self.rebnconv1 = REBNCONV(cout, mid, 1)
        for i in range(2, L):
            setattr(self, f"rebnconv{i}", REBNCONV(mid, mid, 1))
        setattr(self, f"rebnconv{L}", REBNCONV(mid, mid, 2))
        for i in range(L - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(2 * mid, mid, 1))
        self.rebnconv1d = REBNCONV(2 * mid, cout, 1)

    def forward(self, x):
        L = self.L
        hxin = self.rebnconvin(x)
        e = [self.rebnconv1(hxin)]
        for i in range(2, L):
            e.append(getattr(self, f"rebnconv{i}")(pool(e[-1])))
        e.append(getattr(self, f"rebnconv{L}")(e[-1]))
        d = getattr(self, f"rebnconv{L - 1}d")(torch.cat((e[L - 1], e[L - 2]), 1))
        for i in range(L - 2, 0, -1):
            d = getattr(self, f"rebnconv{i}d")(torch.cat((up_like(d, e[i - 1]), e[i - 1]), 1))
        return d + hxin


class RSU4F(nn.Module):
    """Dilated RSU without pooling: 1, 2, 4, 8 then 3d (4), 2d (2), 1d (1)."""

    def __init__(self, cin, mid, cout):
        super().__init__()
        self.rebnconvin = REBNCONV(cin, cout, 1)
        self.rebnconv1 = REBNCONV(cout, mid, 1)
        self.rebnconv2 = REBNCONV(mid, mid, 2)
        self.rebnconv3 = REBNCONV(mid, mid, 4)
        self.rebnconv4 = REBNCONV(mid, mid, 8)
        self.rebnconv3d = REBNCONV(2 * mid, mid, 4)
        self.rebnconv2d = REBNCONV(2 * mid, mid, 2)
        self.rebnconv1d = REBNCONV(2 * mid, cout, 1)

    def forward(self, x):
        hxin = self.rebnconvin(x)
        e1 = self.rebnconv1(hxin)
        e2 = self.rebnconv2(e1)
        e3 = self.rebnconv3(e2)
        e4 = self.rebnconv4(e3)
        d3 = self.rebnconv3d(torch.cat((e4, e3), 1))
        d2 = self.rebnconv2d(torch.cat((d3, e2), 1))
        d1 = self.rebnconv1d(torch.cat((d2, e1), 1))
        return d1 + hxin


class U2Net(nn.Module):
    def __init__(self, kind="u2net", out_ch=1):
        super().__init__()
        for name, (depth, cin, mid, cout) in zip(STAGES, WIDTHS[kind]):
            setattr(self, name, RSU4F(cin, mid, cout) if depth == 0 else RSU(depth, cin, mid, cout))
        w = WIDTHS[kind]
        side_in = [w[10][3], w[9][3], w[8][3], w[7][3], w[6][3], w[5][3]]
        for k, c in enumerate(side_in):
            setattr(self, f"side{k + 1}", nn.Conv2d(c, out_ch, 3, padding=1))
        self.outconv = nn.Conv2d(6 * out_ch, out_ch, 1)

    def forward(self, x):
        enc = [self.stage1(x)]
        for i in range(2, 7):
            enc.append(getattr(self, f"stage{i}")(pool(enc[-1])))
        d = enc[5]
        dec = []
        for i in range(5, 0, -1):
            skip = enc[i - 1]
            d = getattr(self, f"stage{i}d")(torch.cat((up_like(d, skip), skip), 1))
            dec.append(d)                                     # hx5d … hx1d
        side_in = [dec[4], dec[3], dec[2], dec[1], dec[0], enc[5]]
        s1 = self.side1(side_in[0])
        sides = [s1] + [up_like(getattr(self, f"side{k + 1}")(side_in[k]), s1) for k in range(1, 6)]
        d0 = self.outconv(torch.cat(sides, 1))
        return tuple(torch.sigmoid(t) for t in [d0] + sides)


def synthetic_rgb(h, w, seed):
    """A textured orange ellipse with a soft edge on a shaded, noisy background (max 250)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    bg = np.stack([60 + 80 * yy / h, 90 + 60 * xx / w, 140 - 50 * yy / h], -1) + rng.normal(0, 8, (h, w, 3))
    r = np.sqrt(((yy - 0.52 * h) / (0.33 * h)) ** 2 + ((xx - 0.47 * w) / (0.28 * w)) ** 2)
    a = np.clip((1.0 - r) * 12, 0, 1)[..., None]
    obj = np.stack([230 + 0 * yy, 130 + 40 * np.sin(xx / 7), 40 + 30 * np.cos(yy / 5)], -1) + rng.normal(0, 6, (h, w, 3))
    img = bg * (1 - a) + obj * a
    return np.clip(np.round(img), 0, 250).astype(np.uint8)


def rembg_tensor(rgb):
    """rembg's normalisation (base.py:81-106) of an image already 320×320: x / max, (x − mean)/std in
    float64, float32 last."""
    x = rgb / max(float(rgb.max()), 1e-6)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    t = np.stack([(x[..., c] - mean[c]) / std[c] for c in range(3)], 0)
    return t[None].astype(np.float32)


def randomize(model, seed, calib):
    """Convolutions N(0, 1/fan_in), biases N(0, 0.05²); BN γ = 1 + 0.2·N, β = 0.1·N; the running
    statistics = the batch statistics of one train-mode forward on `calib`, then mean += 0.1·std·N and
    var ·= exp(0.1·N), so every layer's output stays O(1) through the depth and the folded weights are
    not a plain identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in ** 0.5)
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.reset_running_stats()
                m.momentum = None                             # cumulative average: one batch = its stats
        model.train()
        model(calib)
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
                n = m.running_mean.shape
                m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(n, generator=g))
                m.running_var.mul_(torch.exp(0.1 * torch.randn(n, generator=g)))
                m.num_batches_tracked.fill_(1)


def check_table(model, table):
    want = json.load(open(table))["state_dict"]
    got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    bad = [(i, g, (w["name"], w["shape"])) for i, (g, w) in enumerate(zip(got, want)) if g != (w["name"], w["shape"])]
    if len(got) != len(want) or bad:
        sys.exit(f"state_dict differs from {table}: {len(got)} vs {len(want)} tensors, first mismatches {bad[:3]}")
    print(f"state_dict: {len(got)} tensors, names, shapes and order as {table}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("out")
    mk.add_argument("--small", action="store_true", help="U²-NetP instead of U²-Net")
    mk.add_argument("--seed", type=int, default=15)
    mk.add_argument("--table", default=os.path.join(os.path.dirname(__file__), "../../shared/fixtures/rembg/u2net-full-tensors.json"))
    ck = sub.add_parser("check")
    ck.add_argument("--table", default=os.path.join(os.path.dirname(__file__), "../../shared/fixtures/rembg/u2net-full-tensors.json"))
    a = ap.parse_args()

    if a.cmd == "check":
        check_table(U2Net("u2net"), a.table)
        return
    torch.manual_seed(a.seed)
    model = U2Net("u2netp" if a.small else "u2net")
    if not a.small and os.path.exists(a.table):
        check_table(model, a.table)
    rgb = synthetic_rgb(320, 320, a.seed)
    x = torch.from_numpy(rembg_tensor(rgb))
    randomize(model, a.seed, x)
    os.makedirs(a.out, exist_ok=True)

    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(a.out, "model.safetensors"))
    rgba = np.concatenate([synthetic_rgb(76, 101, a.seed + 1), np.full((76, 101, 1), 255, np.uint8)], -1)
    rgba[:6, :, 3] = 0
    from safetensors.numpy import save_file as save_np
    save_np({"rgb.image_u8": rgb, "rgba.image_u8": rgba}, os.path.join(a.out, "inputs.safetensors"))

    with torch.no_grad():
        ref = model(x)
    onnx_path = os.path.join(a.out, "u2netp.onnx" if a.small else "u2net.onnx")
    torch.onnx.export(model, (x,), onnx_path, dynamo=False, opset_version=11, do_constant_folding=True,
                      export_params=True, input_names=["input"], output_names=[f"d{i}" for i in range(7)])
    np.save(os.path.join(a.out, "torch_d0.npy"), ref[0].numpy())
    d0 = ref[0].numpy()
    print(f"{onnx_path}: {os.path.getsize(onnx_path)} bytes; torch d0 range [{d0.min():.4f}, {d0.max():.4f}], "
          f"std {d0.std():.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
