#!/usr/bin/env python3
"""onnxruntime side of bench/u2net-bench.sh (issue #15): rembg's U²-Net through onnxruntime.

  u2net_ort.py bench MODEL.onnx --threads N [--reps 5] [--warmup 1] [--input X.safetensors] [--rembg]
      One InferenceSession (intra_op_num_threads N, inter_op 1, sequential execution, CPU provider), the
      same 1×3×320×320 input as ours (rgb.input_tensor of a `hunyuan-cli rembg-eval` output, else a
      seeded random one): warm-up, then timed runs; one JSON line on stdout with ms per run and peak RSS
      (resource.getrusage ru_maxrss of this process). Run one process per thread count.
      --rembg also times rembg's own remove() end to end on a 1024×1024 synthetic image through the
      same session (if rembg is importable).
  u2net_ort.py parity MODEL.onnx OURS.safetensors [OURS2.safetensors …]
      onnxruntime on each file's rgb.input_tensor vs its rgb.d0 (and side logits where torch is at
      hand): max |Δ| per file, one JSON line each.
"""
import argparse
import json
import resource
import sys
import time

import numpy as np


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def session(model, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def load_input(path):
    if path:
        from safetensors.numpy import load_file
        return load_file(path)["rgb.input_tensor"].astype(np.float32).reshape(1, 3, 320, 320)
    return np.random.default_rng(0).standard_normal((1, 3, 320, 320)).astype(np.float32)


def synthetic(n):
    """The image of `hunyuan-cli rembg-bench` (RembgBenchCommand.synthetic), same formula."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    s = float(n)
    r = np.sqrt(((y - 0.52 * s) / (0.33 * s)) ** 2 + ((x - 0.47 * s) / (0.28 * s)) ** 2)
    a = np.clip((1 - r) * 12, 0, 1)
    bg = [60 + 80 * y / s, 90 + 60 * x / s, 140 - 50 * y / s]
    ob = [230.0 + 0 * y, 130 + 40 * np.sin(x / 7), 40 + 30 * np.cos(y / 5)]
    noise = ((x.astype(np.int64) * 7919 + y.astype(np.int64) * 104729) % 17) - 8
    img = np.stack([bg[c] * (1 - a) + ob[c] * a + noise for c in range(3)], -1)
    return np.clip(np.round(img), 0, 250).astype(np.uint8)


def bench(a):
    rss0 = peak_rss()
    t = time.perf_counter()
    sess = session(a.model, a.threads)
    load_s = time.perf_counter() - t
    rss_loaded = peak_rss()
    x = load_input(a.input)
    name = sess.get_inputs()[0].name
    for _ in range(a.warmup):
        sess.run(None, {name: x})
    ms = []
    for _ in range(a.reps):
        t = time.perf_counter()
        sess.run(None, {name: x})
        ms.append((time.perf_counter() - t) * 1000)
    out = {"impl": "onnxruntime", "threads": a.threads, "warmup": a.warmup, "forward_ms": [round(v, 3) for v in ms],
           "forward_ms_mean": float(np.mean(ms)), "forward_ms_sd": float(np.std(ms, ddof=1)) if len(ms) > 1 else 0.0,
           "load_s": load_s, "rss_start_bytes": rss0, "rss_loaded_bytes": rss_loaded, "rss_forward_peak_bytes": peak_rss()}
    import onnxruntime
    out["onnxruntime"] = onnxruntime.__version__
    if a.rembg:
        try:
            import rembg
            from PIL import Image
            from rembg.sessions.u2net import U2netSession
            # rembg's U2netSession around the session above (its __init__ would open, or download, a
            # second copy of the model): predict() only uses model_name and inner_session.
            rs = U2netSession.__new__(U2netSession)
            rs.model_name = "u2net"
            rs.inner_session = sess
            img = Image.fromarray(synthetic(1024))
            rembg.remove(img, session=rs)
            e2e = []
            for _ in range(a.e2e_reps):
                t = time.perf_counter()
                rembg.remove(img, session=rs)
                e2e.append((time.perf_counter() - t) * 1000)
            out.update(rembg=rembg.__version__ if hasattr(rembg, "__version__") else "?", e2e_size=1024,
                       e2e_ms=[round(v, 3) for v in e2e], e2e_ms_mean=float(np.mean(e2e)))
        except Exception as e:                                # optional: rembg may not be installed
            out["rembg_error"] = f"{type(e).__name__}: {e}"
    out["rss_peak_bytes"] = peak_rss()
    print(json.dumps(out))


def parity(a):
    from safetensors.numpy import load_file
    sess = session(a.model, 2)
    name = sess.get_inputs()[0].name
    for path in a.ours:
        t = load_file(path)
        x = t["rgb.input_tensor"].astype(np.float32).reshape(1, 3, 320, 320)
        outs = sess.run(None, {name: x})
        d0 = t["rgb.d0"].reshape(outs[0].shape)
        row = {"ours": path, "d0_max_abs": float(np.abs(d0 - outs[0]).max()),
               "d0_mean_abs": float(np.abs(d0 - outs[0]).mean()),
               "d0_ort_range": [float(outs[0].min()), float(outs[0].max())]}
        # d1..d6 = sigmoid(bilinear(side_k)): side1 has no resize, compare it directly.
        s1 = t["rgb.side1_logit"].reshape(outs[1].shape)
        row["d1_max_abs"] = float(np.abs(1 / (1 + np.exp(-s1.astype(np.float64))) - outs[1]).max())
        if a.torch_dir:
            import torch
            sys.path.insert(0, __file__.rsplit("/", 1)[0])
            from u2net_torch import U2Net
            from safetensors.torch import load_file as load_torch
            m = U2Net("u2net")
            m.load_state_dict(load_torch(a.torch_dir + "/model.safetensors"))
            m.eval()
            with torch.no_grad():
                ref = m(torch.from_numpy(x))[0].numpy()
            row["d0_torch_vs_ort_max_abs"] = float(np.abs(ref - outs[0]).max())
            row["d0_ours_vs_torch_max_abs"] = float(np.abs(ref - d0).max())
        print(json.dumps(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("--threads", type=int, required=True)
    b.add_argument("--reps", type=int, default=5)
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--input")
    b.add_argument("--rembg", action="store_true")
    b.add_argument("--e2e-reps", type=int, default=2)
    p = sub.add_parser("parity")
    p.add_argument("model")
    p.add_argument("ours", nargs="+")
    p.add_argument("--torch-dir", help="folder with model.safetensors: also compare PyTorch (bench/u2net_torch.py)")
    a = ap.parse_args()
    bench(a) if a.cmd == "bench" else parity(a)


if __name__ == "__main__":
    main()
