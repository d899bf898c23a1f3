#!/usr/bin/env bash
# Long context, our engine next to llama.cpp in one run (BENCHMARKS.md, "Long context"): prefill at
# $PREFILL tokens and decode at depth $DEPTHS, both engines on the same exported weights, f16 KV cache,
# $THREADS threads, one repetition per row (after a warm-up below 8,192 tokens), engines interleaved row by row.
# Needs what bench/compare-llamacpp.sh prepares in $HUNYUAN_BENCH_CACHE (run it first, e.g.
# BENCH_TYPES=q8_0 GREEDY_TYPES=q8_0 STEPS=none bash bench/compare-llamacpp.sh).
# Env: HUNYUAN_CLI (default build/hunyuan-cli), HUNYUAN_BENCH_CACHE (default ~/.cache/hunyuan-bench),
#      TYPE (q8_0), KV (f16), THREADS (2), PREFILL ("128 2048 4096 8192 16384 32768"),
#      DEPTHS ("0 4096 16384 32768"), N (decoded tokens per decode row, 32), PY (.venv/bin/python).
# Markdown on stdout, progress on stderr, raw JSON in $CACHE/perf/long-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${HUNYUAN_CLI:-build/hunyuan-cli}
CACHE=${HUNYUAN_BENCH_CACHE:-$HOME/.cache/hunyuan-bench}
PY=${PY:-.venv/bin/python}
TYPE=${TYPE:-q8_0}; KV=${KV:-f16}; THREADS=${THREADS:-2}; N=${N:-32}
PREFILL=${PREFILL:-128 2048 4096 8192 16384 32768}
DEPTHS=${DEPTHS:-0 4096 16384 32768}
LB="$CACHE/llama/build/bin"
M="$CACHE/perf/bench-$TYPE"
[ -x "$LB/llama-bench" ] && [ -f "$M/model.safetensors" ] && [ -f "$M.gguf" ] || {
    echo "run bench/compare-llamacpp.sh first (llama-bench and $M{,.gguf} missing)" >&2; exit 1; }
OUT="$CACHE/perf/long-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
# Warm-up repetitions (page faults of the mapped weights) only where a row is short.
nw() { [ "$1" -ge 8192 ] && echo --no-warmup || true; }
uptime >&2
for p in $PREFILL; do
    echo "prefill $p" >&2
    "$CLI" bench "$M" -p "$p" -n 0 -t "$THREADS" --reps 1 $(nw "$p") --kv-type "$KV" --json > "$OUT/hy-p$p.json"
    "$LB/llama-bench" -m "$M.gguf" -p "$p" -n 0 -t "$THREADS" -r 1 $(nw "$p") -ctk "$KV" -ctv "$KV" -o json > "$OUT/llama-p$p.json"
done
for d in $DEPTHS; do
    echo "decode at depth $d" >&2
    "$CLI" bench "$M" -p 0 -n "$N" -d "$d" -t "$THREADS" --reps 1 $(nw "$d") --kv-type "$KV" --json > "$OUT/hy-d$d.json"
    "$LB/llama-bench" -m "$M.gguf" -p 0 -n "$N" -d "$d" -t "$THREADS" -r 1 $(nw "$d") -ctk "$KV" -ctv "$KV" -o json > "$OUT/llama-d$d.json"
done
uptime >&2
PREFILL="$PREFILL" DEPTHS="$DEPTHS" "$PY" - "$OUT" <<'PYEOF'
import json, os, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| | ours tok/s | llama.cpp tok/s | ratio | ours peak RSS | ours KV bytes |")
print("|---|---|---|---|---|---|")
def row(label, key, hy_field, tag):
    hy = json.loads((out / f"hy-{tag}.json").read_text())[0]
    ll = json.loads((out / f"llama-{tag}.json").read_text())[0]
    ours, theirs = hy[hy_field], ll["avg_ts"]
    print(f"| {label} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} | {hy['peak_rss'] / 1e9:.2f} GB | {hy['kv_bytes'] / 1e6:.0f} MB |")
for p in os.environ["PREFILL"].split():
    row(f"prefill {int(p):,}", p, "prefill_tps", f"p{p}")
for d in os.environ["DEPTHS"].split():
    row(f"decode at depth {int(d):,}", d, "decode_tps", f"d{d}")
PYEOF
