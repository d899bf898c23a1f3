#!/usr/bin/env bash
# Side-by-side benchmark of hunyuan-cli and llama.cpp's llama-bench on identical weights
# (BENCHMARKS.md, "Quantized weights and kernels"). Reproducible from a clean checkout:
#   1. llama.cpp from the llama-cpp-python sdist on PyPI (its vendor/llama.cpp), built once with
#      cmake -DGGML_NATIVE=ON into $CACHE/llama/build (outside the repo);
#   2. the bench model made by our own tool (random weights, bench/hunyuan-moe-bench.json), converted
#      with `hunyuan-cli quantize` (our engine) and `hunyuan-cli export-gguf` (llama.cpp): the q8_0 and
#      q4_0 blocks are byte-identical, f16 is the same rounding;
#   3. both benches in the same run at f16/q8_0/q4_0 with 1 and 2 threads; a markdown table on stdout.
# Env: HUNYUAN_CLI (default .build/release/hunyuan-cli), HUNYUAN_BENCH_CACHE (default ~/.cache/hunyuan-bench),
#      PY (default .venv/bin/python), P / N / REPS / THREADS (defaults 128 / 64 / 3 / 1,2).
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${HUNYUAN_CLI:-.build/release/hunyuan-cli}
CACHE=${HUNYUAN_BENCH_CACHE:-$HOME/.cache/hunyuan-bench}
PY=${PY:-.venv/bin/python}
P=${P:-128}; N=${N:-64}; REPS=${REPS:-3}; THREADS=${THREADS:-1,2}
mkdir -p "$CACHE/llama" "$CACHE/perf"

# 1. llama-bench
LB="$CACHE/llama/build/bin/llama-bench"
if [ ! -x "$LB" ]; then
    if ! ls "$CACHE"/llama/llama_cpp_python-*.tar.gz >/dev/null 2>&1; then
        "$PY" -m pip download --no-deps --no-binary llama-cpp-python -d "$CACHE/llama" llama-cpp-python >&2
    fi
    SRC=$(ls -d "$CACHE"/llama/llama_cpp_python-*/ 2>/dev/null | head -1 || true)
    if [ -z "$SRC" ]; then tar -xzf "$(ls "$CACHE"/llama/llama_cpp_python-*.tar.gz | head -1)" -C "$CACHE/llama"; SRC=$(ls -d "$CACHE"/llama/llama_cpp_python-*/ | head -1); fi
    command -v cmake >/dev/null || "$PY" -m pip install cmake >&2
    nice -n 10 cmake -S "$SRC/vendor/llama.cpp" -B "$CACHE/llama/build" -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DCMAKE_BUILD_TYPE=Release >&2
    nice -n 10 cmake --build "$CACHE/llama/build" --target llama-bench -j"$(nproc)" >&2
fi

# 2. the bench model in every format, for both engines
M="$CACHE/perf/bench"
[ -f "$M-f32/model.safetensors" ] || "$CLI" random-model bench/hunyuan-moe-bench.json -o "$M-f32" >&2
for t in f16 q8_0 q4_0; do
    [ -f "$M-$t/model.safetensors" ] || "$CLI" quantize "$M-f32" "$M-$t" --type "$t" >&2
    [ -f "$M-$t.gguf" ] || "$CLI" export-gguf "$M-f32" "$M-$t.gguf" --type "$t" >&2
done

# 3. both benches, same run
OUT="$CACHE/perf/compare-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
uptime >&2
for t in f16 q8_0 q4_0; do
    "$CLI" bench "$M-$t" -p "$P" -n "$N" -t "$THREADS" --reps "$REPS" --json > "$OUT/hy-$t.json"
    "$LB" -m "$M-$t.gguf" -p "$P" -n "$N" -t "$THREADS" -r "$REPS" -o json > "$OUT/llama-$t.json"
done
uptime >&2
"$PY" - "$OUT" <<'PYEOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| type | threads | ours prefill tok/s | llama.cpp prefill tok/s | ratio | ours decode tok/s | llama.cpp decode tok/s | ratio |")
print("|---|---|---|---|---|---|---|---|")
for t in ["f16", "q8_0", "q4_0"]:
    hy = json.loads((out / f"hy-{t}.json").read_text())
    ll = json.loads((out / f"llama-{t}.json").read_text())
    for row in hy:
        th = row["threads"]
        pre = next((x for x in ll if x["n_threads"] == th and x["n_prompt"] > 0 and x["n_gen"] == 0), None)
        gen = next((x for x in ll if x["n_threads"] == th and x["n_gen"] > 0 and x["n_prompt"] == 0), None)
        def cell(ours, sd, theirs):
            if ours is None or theirs is None:
                return "-", "-", "-"
            return f"{ours:.1f} ± {sd:.1f}", f"{theirs['avg_ts']:.1f} ± {theirs['stddev_ts']:.1f}", f"{ours / theirs['avg_ts']:.2f}x"
        a = cell(row["prefill_tps"], row["prefill_tps_sd"], pre)
        b = cell(row["decode_tps"], row["decode_tps_sd"], gen)
        print(f"| {t} | {th} | {a[0]} | {a[1]} | {a[2]} | {b[0]} | {b[1]} | {b[2]} |")
PYEOF
