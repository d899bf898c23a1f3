#!/usr/bin/env bash
# Our engine next to llama.cpp on identical weights (BENCHMARKS.md, "Quantized weights and kernels"
# and "GGUF export"). Reproducible from a clean checkout:
#   1. llama.cpp from the llama-cpp-python sdist on PyPI (its vendor/llama.cpp), built once with
#      cmake -DGGML_NATIVE=ON into $CACHE/llama/build (outside the repo): llama-bench, llama-tokenize,
#      and bench/llama_greedy.c (greedy decoding from token ids) compiled against its libllama;
#   2. the bench model made by our own tool (random weights, bench/hunyuan-moe-bench.json), converted
#      with `hunyuan-cli quantize` (our engine) and `hunyuan-cli export-gguf` with Hunyuan's tokenizer
#      (llama.cpp): the q8_0 and q4_0 blocks are byte-identical, f16 is the same rounding;
#   3. steps ($STEPS, default all):
#      tokenize  llama-tokenize vs `hunyuan-cli tokenize` on an edge-case text and the corpora;
#      greedy    greedy ids of both engines from the same prompt ids, per type: the identical prefix
#                ("greedy f16: N/N tokens identical"), then llama.cpp run over the prompt + our tokens
#                (teacher forced): how often its argmax picks our next token (this does not stop
#                counting at the first near-tie) and how far its logits are from ours (`logits`);
#      bench     llama-bench and `hunyuan-cli bench` at $BENCH_TYPES (f32 f16 q8_0 q4_0) with $THREADS threads;
#      torch     (not in the default; needs torch, see bench/torch-anchor.sh) PyTorch eager f32 on the f32 model;
#      dequant   (not in the default) llama.cpp in f32 on our q8_0/q4_0 weights dequantized: the exact
#                result both engines approximate, to tell whose rounding a divergence comes from;
#      large     the Hunyuan-Large-style variant (bench/hunyuan-large-bench.json: CLA share factor 2,
#                top-1 of 16 experts; llama.cpp has no such architecture), ours only.
#   Results on stdout (markdown), progress on stderr, raw JSON in $CACHE/perf/compare-<time>/.
# Env: HUNYUAN_CLI (default .build/release/hunyuan-cli), HUNYUAN_BENCH_CACHE (default ~/.cache/hunyuan-bench),
#      HUNYUAN_TOKENIZER (folder with hy.tiktoken + tokenizer_config.json; default
#      ${HUNYUAN_SHARED:-../shared}/data/tokenizer), PY (default .venv/bin/python), CC (default cc),
#      P / N / REPS / THREADS (defaults 128 / 64 / 3 / 1,2), GREEDY_N / GREEDY_THREADS (64 / 2),
#      GREEDY_TYPES (f32 f16 q8_0 q4_0; f32 adds a 3 GB GGUF), BENCH_TYPES (f32 f16 q8_0 q4_0),
#      STEPS (tokenize greedy bench large).
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${HUNYUAN_CLI:-.build/release/hunyuan-cli}
CACHE=${HUNYUAN_BENCH_CACHE:-$HOME/.cache/hunyuan-bench}
TOK=${HUNYUAN_TOKENIZER:-${HUNYUAN_SHARED:-../shared}/data/tokenizer}
PY=${PY:-.venv/bin/python}
CC=${CC:-cc}
P=${P:-128}; N=${N:-64}; REPS=${REPS:-3}; THREADS=${THREADS:-1,2}
GREEDY_N=${GREEDY_N:-64}; GREEDY_THREADS=${GREEDY_THREADS:-2}; GREEDY_TYPES=${GREEDY_TYPES:-f32 f16 q8_0 q4_0}
STEPS=${STEPS:-tokenize greedy bench large}
BENCH_TYPES=${BENCH_TYPES:-f32 f16 q8_0 q4_0}
PROMPT=${GREEDY_PROMPT:-"The Hunyuan model card says: 52B active parameters, 389B in all; it's the largest open MoE (2024)."}
step() { [[ " $STEPS " == *" $1 "* ]]; }
[ -f "$TOK/hy.tiktoken" ] || { echo "no hy.tiktoken in $TOK (set HUNYUAN_TOKENIZER)" >&2; exit 1; }
mkdir -p "$CACHE/llama" "$CACHE/perf"

# 1. llama.cpp: llama-bench, llama-tokenize, llama_greedy
LB="$CACHE/llama/build/bin"
if ! ls -d "$CACHE"/llama/llama_cpp_python-*/ >/dev/null 2>&1; then
    if ! ls "$CACHE"/llama/llama_cpp_python-*.tar.gz >/dev/null 2>&1; then
        "$PY" -m pip download --no-deps --no-binary llama-cpp-python -d "$CACHE/llama" llama-cpp-python >&2
    fi
    tar -xzf "$(ls "$CACHE"/llama/llama_cpp_python-*.tar.gz | head -1)" -C "$CACHE/llama"
fi
SRC="$(ls -d "$CACHE"/llama/llama_cpp_python-*/ | head -1)vendor/llama.cpp"
if [ ! -x "$LB/llama-bench" ] || [ ! -x "$LB/llama-tokenize" ]; then
    CMAKE=$(command -v cmake || echo "$(dirname "$PY")/cmake")
    [ -x "$CMAKE" ] || "$PY" -m pip install cmake >&2
    if [ ! -f "$CACHE/llama/build/CMakeCache.txt" ]; then
        nice -n 10 "$CMAKE" -S "$SRC" -B "$CACHE/llama/build" -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DCMAKE_BUILD_TYPE=Release >&2
    fi
    nice -n 10 "$CMAKE" --build "$CACHE/llama/build" --target llama-bench llama-tokenize -j"$(nproc)" >&2
fi
GREEDY="$CACHE/llama/llama_greedy"
if [ ! -x "$GREEDY" ] || [ bench/llama_greedy.c -nt "$GREEDY" ]; then
    "$CC" -O2 -std=c11 -I"$SRC/include" -I"$SRC/ggml/include" bench/llama_greedy.c \
        -L"$LB" -lllama -Wl,-rpath,"$LB" -o "$GREEDY" >&2
fi

# 2. the bench model in every format, for both engines (GGUFs from before the tokenizer export are redone)
M="$CACHE/perf/bench"
has_vocab() { [ "$(head -c 16000000 "$1" 2>/dev/null | LC_ALL=C grep -ac tokenizer.ggml.merges)" != 0 ]; }   # grep -c: no SIGPIPE under pipefail
[ -f "$M-f32/model.safetensors" ] || "$CLI" random-model bench/hunyuan-moe-bench.json -o "$M-f32" >&2
for t in f16 q8_0 q4_0; do
    [ -f "$M-$t/model.safetensors" ] || "$CLI" quantize "$M-f32" "$M-$t" --type "$t" >&2
done
for t in $BENCH_TYPES $GREEDY_TYPES; do
    has_vocab "$M-$t.gguf" || "$CLI" export-gguf "$M-f32" "$M-$t.gguf" --type "$t" --tokenizer "$TOK" >&2
done
OUT="$CACHE/perf/compare-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
ids() { tr -d '[],\n' | tr -s ' ' | sed 's/^ //; s/ $//'; }
same() { "$PY" - "$1" "$2" <<'PYEOF'
import sys
a, b = (open(p).read().split() for p in sys.argv[1:3])
n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
print(n, len(a), len(b))
PYEOF
}

# 3a. tokenization: the prompt, an edge-case text, the corpora (special surface forms parsed and not)
if step tokenize; then
    printf '%s' "$PROMPT" > "$OUT/text-prompt.txt"
    printf "Hello world! It's 2026: DON'T we'LL 12345 tokens, naïve café\r\n\r\n   indented\tcode();  \n\n\n<|eos|> <|extra_3|> 混元大模型。こんにちは 안녕하세요 🙂🙂 ١٢٣ Ⅻ ½   \n x  " > "$OUT/text-edge.txt"
    texts=("$OUT/text-prompt.txt" "$OUT/text-edge.txt")
    for f in "${HUNYUAN_SHARED:-../shared}"/data/corpus/*.txt; do [ -f "$f" ] && texts+=("$f"); done
    ok=0; total=0; ntok=0
    for f in "${texts[@]}"; do
        for special in yes no; do
            if [ $special = yes ]; then lf=(); hf=(); else lf=(--no-parse-special); hf=(--no-special); fi
            "$LB/llama-tokenize" -m "$M-f16.gguf" -f "$f" --ids --no-bos --no-escape --log-disable "${lf[@]}" 2>/dev/null | ids > "$OUT/tok-llama.txt"
            "$CLI" tokenize --tokenizer "$TOK" --no-wrap "${hf[@]}" < "$f" > "$OUT/tok-ours.txt"
            read -r n a b < <(same "$OUT/tok-ours.txt" "$OUT/tok-llama.txt")
            total=$((total + 1)); ntok=$((ntok + a))
            if [ "$n" = "$a" ] && [ "$a" = "$b" ]; then ok=$((ok + 1)); else echo "tokenize: $(basename "$f") (special $special) differs at token $n of $a/$b" >&2; fi
        done
    done
    echo "tokenize: $ok/$total texts identical ($ntok tokens; llama-tokenize vs hunyuan-cli tokenize, special parsing on and off)"
fi

# 3b. greedy decoding from the same prompt ids
if step greedy; then
    PIDS="127958 $(printf '%s' "$PROMPT" | "$CLI" tokenize --tokenizer "$TOK" --no-wrap --no-special)"   # <|startoftext|> + text, as `generate --prompt`
    echo "$PIDS" > "$OUT/prompt-ours.txt"
    "$LB/llama-tokenize" -m "$M-f16.gguf" -p "<|startoftext|>$PROMPT" --ids --no-bos --no-escape --log-disable 2>/dev/null | ids > "$OUT/prompt-llama.txt"
    read -r n a b < <(same "$OUT/prompt-ours.txt" "$OUT/prompt-llama.txt")
    echo "greedy prompt: $a tokens, $( [ "$n" = "$a" ] && [ "$a" = "$b" ] && echo identical || echo "DIFFERENT at $n") in both tokenizers"
    CSV=$(echo $PIDS | tr ' ' ',')
    for t in $GREEDY_TYPES; do
        "$CLI" generate "$M-$t" --tokens "$CSV" --greedy --max-tokens "$GREEDY_N" -t "$GREEDY_THREADS" > "$OUT/greedy-ours-$t.txt" 2>/dev/null
        "$GREEDY" "$M-$t.gguf" "$GREEDY_N" "$GREEDY_THREADS" "$CSV" > "$OUT/greedy-llama-$t.txt"
        read -r n a b < <(same "$OUT/greedy-ours-$t.txt" "$OUT/greedy-llama-$t.txt")
        ALL="$CSV,$(tr ' ' ',' < "$OUT/greedy-ours-$t.txt" | tr -d '\n')"
        LLAMA_GREEDY_LOGITS="$OUT/forced-llama-$t.f32" "$GREEDY" "$M-$t.gguf" 0 "$GREEDY_THREADS" "$ALL" > "$OUT/forced-llama-$t.txt"
        "$CLI" logits "$M-$t" --tokens "$ALL" -o "$OUT/logits-ours-$t.npy" -t "$GREEDY_THREADS" >&2
        forced=$("$PY" - "$OUT" "$t" "$(echo $PIDS | wc -w)" <<'PYEOF'
import sys, pathlib
import numpy as np
out, t, np_ = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ours = (out / f"greedy-ours-{t}.txt").read_text().split()
theirs = (out / f"forced-llama-{t}.txt").read_text().split()[np_ - 1:]
a = np.load(out / f"logits-ours-{t}.npy")
b = np.fromfile(out / f"forced-llama-{t}.f32", dtype=np.float32).reshape(a.shape)
rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
print(f"{sum(x == y for x, y in zip(ours, theirs))}/{len(ours)}, logits rel. difference median {np.median(rel):.2g} max {rel.max():.2g}")
PYEOF
)
        div=$( [ "$n" -lt "$a" ] && echo " (first divergence at step $n)" || true)
        echo "greedy $t: $n/$a tokens identical$div; llama.cpp along our tokens (teacher forced): argmax $forced"
    done
fi

# 3b'. (optional step "dequant") where the q8_0/q4_0 differences come from: llama.cpp's f32 run on our
# quantized weights dequantized (export-gguf of the quantized folder at f32, 3 GB each) is the exact
# computation both engines approximate; after the greedy step, over the same teacher-forced tokens.
if step dequant && step greedy; then
    for t in q8_0 q4_0; do
        [[ " $GREEDY_TYPES " == *" $t "* ]] || continue
        has_vocab "$M-$t-dequant.gguf" || "$CLI" export-gguf "$M-$t" "$M-$t-dequant.gguf" --type f32 --tokenizer "$TOK" >&2
        ALL="$CSV,$(tr ' ' ',' < "$OUT/greedy-ours-$t.txt" | tr -d '\n')"
        LLAMA_GREEDY_LOGITS="$OUT/dequant-llama-$t.f32" "$GREEDY" "$M-$t-dequant.gguf" 0 "$GREEDY_THREADS" "$ALL" > /dev/null
        "$PY" - "$OUT" "$t" <<'PYEOF'
import sys, pathlib
import numpy as np
out, t = pathlib.Path(sys.argv[1]), sys.argv[2]
ours = np.load(out / f"logits-ours-{t}.npy")
theirs = np.fromfile(out / f"forced-llama-{t}.f32", dtype=np.float32).reshape(ours.shape)
exact = np.fromfile(out / f"dequant-llama-{t}.f32", dtype=np.float32).reshape(ours.shape)
rel = lambda a: np.median(np.linalg.norm(a - exact, axis=1) / np.linalg.norm(exact, axis=1))
print(f"dequant {t}: logits rel. difference from f32 on the dequantized weights: ours {rel(ours):.2g}, llama.cpp {rel(theirs):.2g} (median)")
PYEOF
    done
fi

# 3c. both benches, same run
if step bench; then
    uptime >&2
    for t in $BENCH_TYPES; do
        "$CLI" bench "$M-$t" -p "$P" -n "$N" -t "$THREADS" --reps "$REPS" --json > "$OUT/hy-$t.json"
        "$LB/llama-bench" -m "$M-$t.gguf" -p "$P" -n "$N" -t "$THREADS" -r "$REPS" -o json > "$OUT/llama-$t.json"
    done
    uptime >&2
    BENCH_TYPES="$BENCH_TYPES" "$PY" - "$OUT" <<'PYEOF'
import json, os, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("| type | threads | ours prefill tok/s | llama.cpp prefill tok/s | ratio | ours decode tok/s | llama.cpp decode tok/s | ratio |")
print("|---|---|---|---|---|---|---|---|")
for t in os.environ["BENCH_TYPES"].split():
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
fi

# 3d. the Hunyuan-Large-style variant, ours only (next to the A13B-style rows above for the same sizes)
if step large; then
    L="$CACHE/perf/bench-large"
    [ -f "$L-f32/model.safetensors" ] || "$CLI" random-model bench/hunyuan-large-bench.json -o "$L-f32" >&2
    for t in f16 q8_0 q4_0; do
        [ -f "$L-$t/model.safetensors" ] || "$CLI" quantize "$L-f32" "$L-$t" --type "$t" >&2
        "$CLI" bench "$L-$t" -p "$P" -n "$N" -t "$THREADS" --reps "$REPS" --json > "$OUT/hy-large-$t.json"
    done
    "$PY" - "$OUT" <<'PYEOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print()
print("| variant | type | threads | ours prefill tok/s | ours decode tok/s | KV bytes/token | model bytes |")
print("|---|---|---|---|---|---|---|")
for variant, prefix in [("A13B-style (top-4, no CLA)", "hy"), ("Large-style (top-1, CLA 2)", "hy-large")]:
    for t in ["f16", "q8_0", "q4_0"]:
        p = out / f"{prefix}-{t}.json"
        if not p.exists():
            continue
        for r in json.loads(p.read_text()):
            f = lambda v, sd: "-" if v is None else f"{v:.1f} ± {sd:.1f}"
            print(f"| {variant} | {t} | {r['threads']} | {f(r['prefill_tps'], r['prefill_tps_sd'])} | "
                  f"{f(r['decode_tps'], r['decode_tps_sd'])} | {r['kv_bytes_per_token']} | {r['model_bytes']} |")
PYEOF
fi

# 3e. (optional step "torch") PyTorch eager f32 on the same f32 checkpoint, next to ours
if step torch; then
    OUT="$OUT" LM_MODEL="$M-f32" CHECK=0 P="$P" N="$N" REPS="$REPS" THREADS="$THREADS" HUNYUAN_CLI="$CLI" \
        HUNYUAN_BENCH_CACHE="$CACHE" bash bench/torch-anchor.sh
fi
