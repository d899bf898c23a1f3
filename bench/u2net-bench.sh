#!/usr/bin/env bash
# U²-Net (rembg's u2net.onnx, Hunyuan3D-1.0's background removal) at full size: ours vs onnxruntime on
# the CPU, same model, same 1×3×320×320 input, per thread count (issue #15). Steps:
#   1. a venv with torch, onnx, onnxruntime, safetensors, numpy (PyPI), $CACHE/venv unless PY is given;
#   2. the full-size random-weight U²-Net made by bench/u2net_torch.py (names and shapes of
#      fixtures/rembg/u2net-full-tensors.json, exported as rembg's file was: TorchScript exporter, opset 11,
#      BN folded), $CACHE/u2net-full-random/{u2net.onnx,model.safetensors,inputs.safetensors};
#   3. parity: `hunyuan-cli rembg-eval` on the ONNX and on the safetensors, then onnxruntime (and torch)
#      on the same input tensor: max |Δ| of d0 = sigmoid output (parity.jsonl);
#   4. timing, interleaved per thread count, a fresh process each (so peak RSS is per count):
#      `hunyuan-cli rembg-bench --json` (forward, plus remove-background of a 1024² image) and
#      bench/u2net_ort.py bench (InferenceSession, intra_op = T, inter_op 1, sequential; --rembg: rembg's
#      remove() on the same 1024² image if rembg is importable);
#   5. a markdown table on stdout; raw JSON lines in $CACHE/bench-<stamp>.jsonl, load average on stderr.
# Env: HUNYUAN_CLI (default build/hunyuan-cli, else .build/release/hunyuan-cli), HUNYUAN_BENCH_CACHE
#      (default ~/.cache/hunyuan-bench; this script uses $HUNYUAN_BENCH_CACHE/u2net), PY (a python with the
#      packages above), HUNYUAN_SHARED (default ../shared), THREADS (1,2), REPS (5), WARMUP (1),
#      E2E_REPS (2), REMBG (0: 1 adds rembg's remove() timing), MODEL (u2net.onnx or model.safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${HUNYUAN_CLI:-}" ]; then CLI=$HUNYUAN_CLI; elif [ -x build/hunyuan-cli ]; then CLI=build/hunyuan-cli; else CLI=.build/release/hunyuan-cli; fi
CACHE=${HUNYUAN_BENCH_CACHE:-$HOME/.cache/hunyuan-bench}/u2net
SHARED=${HUNYUAN_SHARED:-../shared}
THREADS=${THREADS:-1,2}; REPS=${REPS:-5}; WARMUP=${WARMUP:-1}; E2E_REPS=${E2E_REPS:-2}; REMBG=${REMBG:-0}
DIR=$CACHE/u2net-full-random
mkdir -p "$CACHE"

# 1. Python
PY=${PY:-$CACHE/venv/bin/python}
if ! "$PY" -c "import torch, onnx, onnxruntime, safetensors, numpy" 2>/dev/null; then
    python3 -m venv "$CACHE/venv" >&2
    "$CACHE/venv/bin/pip" install torch onnx onnxruntime safetensors numpy >&2
    PY=$CACHE/venv/bin/python
fi

# 2. model
if [ ! -f "$DIR/u2net.onnx" ] || [ ! -f "$DIR/model.safetensors" ]; then
    "$PY" bench/u2net_torch.py make "$DIR" --table "$SHARED/fixtures/rembg/u2net-full-tensors.json" >&2
fi
MODEL=${MODEL:-$DIR/u2net.onnx}

# 3. parity (ours from both files vs onnxruntime and torch)
"$CLI" rembg-eval "$DIR/u2net.onnx" --inputs "$DIR/inputs.safetensors" -o "$CACHE/ours-eval-onnx.safetensors" --overwrite >&2
"$CLI" rembg-eval "$DIR/model.safetensors" --inputs "$DIR/inputs.safetensors" -o "$CACHE/ours-eval-safetensors.safetensors" --overwrite >&2
"$PY" bench/u2net_ort.py parity "$DIR/u2net.onnx" "$CACHE/ours-eval-onnx.safetensors" \
    "$CACHE/ours-eval-safetensors.safetensors" --torch-dir "$DIR" | tee "$CACHE/parity.jsonl" >&2
IN=$CACHE/ours-eval-onnx.safetensors                     # rgb.input_tensor: the same input for both sides

# 4. timing, interleaved
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$CACHE/bench-$STAMP.jsonl
echo "load at start: $(uptime)" >&2
for t in ${THREADS//,/ }; do
    "$CLI" rembg-bench "$MODEL" --threads "$t" --reps "$REPS" --warmup "$WARMUP" --e2e-reps "$E2E_REPS" \
        --input "$IN" --json >> "$RAW"
    R=(); [ "$REMBG" = 1 ] && R=(--rembg --e2e-reps "$E2E_REPS")
    "$PY" bench/u2net_ort.py bench "$DIR/u2net.onnx" --threads "$t" --reps "$REPS" --warmup "$WARMUP" \
        --input "$IN" "${R[@]}" >> "$RAW"
done
echo "load at end: $(uptime)" >&2
echo "raw: $RAW" >&2

# 5. table
"$PY" - "$RAW" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ours = {r["threads"]: r for r in rows if r["impl"] == "hunyuan"}
ort = {r["threads"]: r for r in rows if r["impl"] == "onnxruntime"}
mib = lambda b: f"{b / 2**20:.0f} MiB"
print("| threads | ours ms | onnxruntime ms | ratio (ours/ort) | ours peak RSS | ort peak RSS | ours remove-background 1024² ms | rembg remove() 1024² ms |")
print("|---|---|---|---|---|---|---|---|")
for t in sorted(ours):
    o, r = ours[t], ort.get(t)
    if r is None:
        continue
    rb = f"{r['e2e_ms_mean']:.0f}" if "e2e_ms_mean" in r else "–"
    print(f"| {t} | {o['forward_ms_mean']:.0f} ± {o['forward_ms_sd']:.0f} | {r['forward_ms_mean']:.0f} ± {r['forward_ms_sd']:.0f} | "
          f"{o['forward_ms_mean'] / r['forward_ms_mean']:.2f} | {mib(o['rss_peak_bytes'])} | {mib(r['rss_peak_bytes'])} | "
          f"{o['e2e_ms_mean']:.0f} | {rb} |")
EOF
