#!/usr/bin/env bash
# Second anchor for the LM benchmark (BENCHMARKS.md, issue #8): PyTorch eager float32 on the same
# checkpoint as `hunyuan-cli bench` (bench/lm_torch.py, a compact re-implementation checked against the
# fixtures' reference logits with --check). Same protocol as ours: prefill = one forward over -p random
# tokens keeping the last logits; decode = -n greedy single-token steps with a KV cache; one warm-up,
# then mean ± sd over --reps. Prints a markdown table on stdout; raw JSON under $OUT.
# Env: HUNYUAN_CLI (default build/hunyuan-cli, else .build/release/hunyuan-cli), HUNYUAN_BENCH_CACHE
#      (default ~/.cache/hunyuan-bench), TORCH_PY (default $CACHE/torch-venv/bin/python; the venv is made
#      there from PyPI when missing; torch is never a CI dependency), LM_MODEL (default $CACHE/perf/bench-f32,
#      made from bench/hunyuan-moe-bench.json when missing), OUT (default $CACHE/perf/torch-anchor-<time>),
#      P / N / REPS / THREADS (defaults 128 / 64 / 3 / 1,2), CHECK (1: run lm_torch.py --check on the
#      fixtures under $HUNYUAN_SHARED/fixtures/lm first; default 1 when they exist).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${HUNYUAN_CLI:-}" ]; then CLI=$HUNYUAN_CLI; elif [ -x build/hunyuan-cli ]; then CLI=build/hunyuan-cli; else CLI=.build/release/hunyuan-cli; fi
CACHE=${HUNYUAN_BENCH_CACHE:-$HOME/.cache/hunyuan-bench}
SHARED=${HUNYUAN_SHARED:-../shared}
P=${P:-128}; N=${N:-64}; REPS=${REPS:-3}; THREADS=${THREADS:-1,2}
M=${LM_MODEL:-$CACHE/perf/bench-f32}
OUT=${OUT:-$CACHE/perf/torch-anchor-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$CACHE/perf" "$OUT"

TPY=${TORCH_PY:-$CACHE/torch-venv/bin/python}
if ! "$TPY" -c "import torch, numpy, safetensors" 2>/dev/null; then
    python3 -m venv "$CACHE/torch-venv" >&2
    "$CACHE/torch-venv/bin/pip" install torch numpy safetensors >&2
    TPY=$CACHE/torch-venv/bin/python
fi
[ -f "$M/model.safetensors" ] || "$CLI" random-model bench/hunyuan-moe-bench.json -o "$M" >&2

if [ "${CHECK:-1}" = 1 ] && ls -d "$SHARED"/fixtures/lm/*/ >/dev/null 2>&1; then
    "$TPY" bench/lm_torch.py --check "$SHARED"/fixtures/lm/*/ > "$OUT/torch-check.jsonl"
fi

uptime >&2
"$CLI" bench "$M" -p "$P" -n "$N" -t "$THREADS" --reps "$REPS" --json > "$OUT/hy-f32.json"
"$TPY" bench/lm_torch.py --bench "$M" -p "$P" -n "$N" -t "$THREADS" --reps "$REPS" --json > "$OUT/torch-f32.json"
uptime >&2

"$TPY" - "$OUT" <<'PYEOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
hy = json.loads((out / "hy-f32.json").read_text())
pt = json.loads((out / "torch-f32.json").read_text())
print(f"f32 weights, {hy[0]['n_prompt']}-token prefill, {hy[0]['n_gen']}-token decode; PyTorch = {pt[0]['engine']}\n")
print("| threads | ours prefill tok/s | PyTorch prefill tok/s | ratio | ours decode tok/s | PyTorch decode tok/s | ratio | ours / PyTorch peak RSS |")
print("|---|---|---|---|---|---|---|---|")
def cell(row, k):
    return "-" if row.get(k) is None else f"{row[k]:.1f} ± {row[k + '_sd']:.1f}"
def ratio(a, b, k):
    return "-" if a.get(k) is None or not b.get(k) else f"{a[k] / b[k]:.2f}x"
for a in hy:
    b = next((x for x in pt if x["threads"] == a["threads"]), None)
    if b is None:
        continue
    print(f"| {a['threads']} | {cell(a, 'prefill_tps')} | {cell(b, 'prefill_tps')} | {ratio(a, b, 'prefill_tps')} | "
          f"{cell(a, 'decode_tps')} | {cell(b, 'decode_tps')} | {ratio(a, b, 'decode_tps')} | "
          f"{a['peak_rss'] / 1e9:.2f} / {b['peak_rss'] / 1e9:.2f} GB |")
chk = out / "torch-check.jsonl"
if chk.exists():
    rows = [json.loads(l) for l in chk.read_text().splitlines() if l.strip()]
    worst = max(r["logits_max_abs_err"] for r in rows)
    print(f"\nPyTorch model vs fixture logits: {len(rows)} fixtures, max |Δ| {worst:.1e}, "
          f"all pass: {all(r['pass'] for r in rows)}")
print(f"\nraw: {out}")
PYEOF
