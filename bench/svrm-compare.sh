#!/usr/bin/env bash
# SVRM (Hunyuan3D-1.0 reconstruction model) per-stage timing: ours vs PyTorch on the CPU, same model,
# same inputs, same run (BENCHMARKS.md "Reconstruction (SVRM)", issue #6). Steps:
#   1. a venv with torch (PyPI) outside the repo, $CACHE/torch-venv (torch is never a CI dependency);
#   2. the full-size random-weight SVRM made by our tool (`hunyuan-cli svrm-random`, all official
#      tensors) and fixture-style inputs (images f32 [7,3,504,504], the predictor's cameras);
#   3. sgemm GFLOP/s of the BLAS the engine links (bench/sgemm_rate.py) -> the GEMM bound per stage;
#   4. ours: `hunyuan-cli svrm-eval --timings --grid RES` (encoder, triplane transformer, upsampler,
#      SDF grid), then `svrm-eval --triplane … --mesh` (SDF evaluated straight into marching cubes);
#   5. PyTorch: bench/svrm_torch.py --bench (SDPA attention, grid decode in x-slices, no marching cubes);
#   6. parity of ours vs PyTorch at full size (tokens, triplane, SDF grid) and a markdown table on stdout.
# Env: HUNYUAN_CLI (default build/hunyuan-cli, else .build/release/hunyuan-cli), HUNYUAN_BENCH_CACHE
#      (default ~/.cache/hunyuan-bench), TORCH_PY (default $CACHE/torch-venv/bin/python), SVRM_MODEL
#      (default $CACHE/svrm-full), SVRM_INPUTS (default $CACHE/svrm-bench-inputs-seed1.safetensors, made
#      by svrm_torch.py --make-inputs), HUNYUAN_SHARED (default ../shared), RES (384), THREADS (2), MESH (1),
#      KEEP (0: delete the 226 MB grids after the parity check).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${HUNYUAN_CLI:-}" ]; then CLI=$HUNYUAN_CLI; elif [ -x build/hunyuan-cli ]; then CLI=build/hunyuan-cli; else CLI=.build/release/hunyuan-cli; fi
CACHE=${HUNYUAN_BENCH_CACHE:-$HOME/.cache/hunyuan-bench}
SHARED=${HUNYUAN_SHARED:-../shared}
RES=${RES:-384}; THREADS=${THREADS:-2}; MESH=${MESH:-1}; KEEP=${KEEP:-0}
MODEL=${SVRM_MODEL:-$CACHE/svrm-full}
mkdir -p "$CACHE"

# 1. torch venv
TPY=${TORCH_PY:-$CACHE/torch-venv/bin/python}
if ! "$TPY" -c "import torch, numpy, safetensors" 2>/dev/null; then
    python3 -m venv "$CACHE/torch-venv" >&2
    "$CACHE/torch-venv/bin/pip" install torch numpy safetensors >&2
    TPY=$CACHE/torch-venv/bin/python
fi

# 2. model and inputs
if [ ! -f "$MODEL/model.safetensors" ]; then
    "$CLI" svrm-random "$MODEL" --tensors "$SHARED/fixtures/svrm/full-size-tensors.json" >&2
fi
IN=${SVRM_INPUTS:-$CACHE/svrm-bench-inputs-seed1.safetensors}
[ -f "$IN" ] || "$TPY" bench/svrm_torch.py --make-inputs "$IN" --model "$MODEL" --seed 1

OUT="$CACHE/svrm-compare-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs /usr/bin/time (GNU time) for peak RSS" >&2; exit 1; }
uptime >&2

# 3. sgemm rate of the engine's BLAS
"$TPY" bench/sgemm_rate.py -t "1,$THREADS" > "$OUT/sgemm.json"

# 4. ours
$TIME -f "%M %e %U %S" -o "$OUT/ours-time.txt" \
    "$CLI" svrm-eval "$MODEL" --inputs "$IN" --grid "$RES" --threads "$THREADS" --timings \
    -o "$OUT/ours.safetensors" 2> "$OUT/ours.log"
if [ "$MESH" = 1 ]; then
    $TIME -f "%M %e %U %S" -o "$OUT/ours-mesh-time.txt" \
        "$CLI" svrm-eval "$MODEL" --triplane "$OUT/ours.safetensors" --mesh "$OUT/ours-mesh.ply" \
        --mesh-resolution "$RES" --threads "$THREADS" --timings -o "$OUT/ours-mesh.safetensors" 2> "$OUT/ours-mesh.log"
fi

# 5. PyTorch
$TIME -f "%M %e %U %S" -o "$OUT/torch-time.txt" \
    "$TPY" bench/svrm_torch.py --bench "$MODEL" --inputs "$IN" --resolution "$RES" --threads "$THREADS" \
    --json --save "$OUT/torch.safetensors" > "$OUT/torch.json" 2> "$OUT/torch.log"
uptime >&2

# 6. table
"$TPY" - "$OUT" "$THREADS" "$RES" "$MESH" <<'PYEOF'
import json, re, sys, pathlib
import numpy as np
from safetensors.numpy import load_file
out, threads, res, mesh = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
tj = json.loads((out / "torch.json").read_text())
sg = json.loads((out / "sgemm.json").read_text())["gflops"]
rate1 = sg["1"]
# ours: `  name: X s` deltas between trace points; the stage is the sum of its trace deltas.
ours = {"encoder": 0.0, "triplane_transformer": 0.0, "upsampler": 0.0, "grid_decode": None, "load": None}
log = (out / "ours.log").read_text()
for name, s in re.findall(r"^  (\S+): ([0-9.]+) s$", log, re.M):
    s = float(s)
    if name.startswith("enc_") or name == "encoder_tokens":
        ours["encoder"] += s
    elif name.startswith("tri_block_out") or name == "triplane_tokens":
        ours["triplane_transformer"] += s
    elif name in ("upsampler_out", "triplane"):
        ours["upsampler"] += s
m = re.search(r"^sdf grid \d+\^3: ([0-9.]+) s$", log, re.M)
ours["grid_decode"] = float(m.group(1)) if m else None
m = re.search(r"^load: ([0-9.]+) s$", log, re.M)
ours["load"] = float(m.group(1)) if m else None
ours_rss = int((out / "ours-time.txt").read_text().split()[0]) * 1024
torch_rss = int((out / "torch-time.txt").read_text().split()[0]) * 1024
mesh_s = mesh_desc = None
if mesh:
    m = re.search(r"^mesh \d+\^3: (\d+) vertices, (\d+) faces, ([0-9.]+) s$", (out / "ours-mesh.log").read_text(), re.M)
    if m:
        mesh_s, mesh_desc = float(m.group(3)), f"{int(m.group(1)):,} vertices, {int(m.group(2)):,} faces"

names = [("encoder", "image encoder"), ("triplane_transformer", "triplane transformer"),
         ("upsampler", "upsampler + pixel shuffle"), ("grid_decode", f"SDF grid {res}³ (no normals)")]
print(f"SVRM, full size (random weights), {res}³, {threads} threads; sgemm {rate1} GFLOP/s on 1 thread "
      f"({sg.get(str(threads), '-')} on {threads}) from the engine's BLAS; PyTorch {tj['engine']}, its own sgemm "
      f"{tj['torch_sgemm_gflops']} GFLOP/s on {threads}.\n")
print("| stage | GFLOP | GEMM bound | ours | ours / bound | PyTorch | ours / PyTorch |")
print("|---|---|---|---|---|---|---|")
tot = {"gf": 0.0, "o": 0.0, "t": 0.0}
for k, label in names:
    gf = tj["gflop"][k]
    bound = gf / (threads * rate1)
    o, t = ours[k], tj["seconds"][k]
    tot["gf"] += gf; tot["t"] += t; tot["o"] += o or 0
    f = lambda v: "-" if v is None else f"{v:.2f} s"
    print(f"| {label} | {gf:,.0f} | {bound:.2f} s | {f(o)} | {'-' if o is None else f'{o / bound:.2f}x'} | "
          f"{t:.2f} s | {'-' if o is None else f'{o / t:.2f}x'} |")
b = tot["gf"] / (threads * rate1)
print(f"| **network total** | {tot['gf']:,.0f} | {b:.2f} s | **{tot['o']:.2f} s** | {tot['o'] / b:.2f}x | "
      f"**{tot['t']:.2f} s** | {tot['o'] / tot['t']:.2f}x |")
print(f"| load (f16 → f32) | | | {ours['load']} s | | {tj['seconds']['load']} s | |")
if mesh_s is not None:
    print(f"| ours: SDF {res}³ into marching cubes ({mesh_desc}) | | | {mesh_s:.2f} s | | (not run) | |")
print(f"| peak RSS | | | {ours_rss / 1e9:.2f} GB | | {torch_rss / 1e9:.2f} GB | |")

# Parity at full size (float32 both sides; the random model's attention is nearly uniform).
a, t = load_file(str(out / "ours.safetensors")), load_file(str(out / "torch.safetensors"))
cells = []
for k in ("encoder_tokens", "triplane", "sdf_grid"):
    if k in a and k in t and a[k].shape == t[k].shape:
        d = np.abs(a[k].astype(np.float64) - t[k]).max()
        cells.append(f"{k} {d:.2e} (|ref| ≤ {np.abs(t[k]).max():.2f})")
    else:
        cells.append(f"{k} missing/shape mismatch")
if "sdf_grid" in a and "sdf_grid" in t:
    cells.append(f"sign disagreements {int(((a['sdf_grid'] < 0) != (t['sdf_grid'] < 0)).sum())} of {a['sdf_grid'].size}")
print("\nours vs PyTorch, max abs difference: " + "; ".join(cells))
print(f"\nraw: {out}")
PYEOF
if [ "$KEEP" != 1 ]; then rm -f "$OUT/ours.safetensors" "$OUT/torch.safetensors" "$OUT/ours-mesh.safetensors"; fi
