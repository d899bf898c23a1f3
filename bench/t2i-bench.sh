#!/usr/bin/env bash
# HunyuanDiT v1.1 text to image (Hunyuan3D-1.0's first stage): ours (hunyuan-cli t2i-bench) vs PyTorch /
# diffusers (bench/t2i-diffusers.py) on the same random-weight folder, interleaved: for each thread count
# and each image size, ours then PyTorch, each in its own process.
#
#   bench/t2i-bench.sh [--dir DIR] [--dtype f16|bf16|f32] [--size full|tiny] [--threads "1 2"] [--sizes "1024 512"]
#                      [--compute fp32|bf16]
#
# Makes DIR with `hunyuan-cli t2i-random` if it is missing (default ~/.cache/hunyuan-bench/t2i-<size>-<dtype>).
# Per thread count, the first size runs every component (BERT 2 × 77 tokens, mT5 2 × 256 tokens, one DiT step
# on the CFG + PAG batch of 3, the VAE decode); the other sizes skip the encoders (DiT step and VAE decode
# only). PyTorch runs in fp32 on the CPU (diffusers' HunyuanDiT2DModel with HunyuanDiTPAGPipeline's PAG
# processors, transformers' BertModel / T5EncoderModel). stdout: every table, then one markdown table:
# component | threads | ours s | PyTorch s | PyTorch / ours | bound s | ours % of bound | peak RSS GB (ours, PyTorch).
# Our DiT step row is the forward alone (the conditioning, once per run, has its own row); PyTorch's includes it
# (text embedder, attention pooler, extra embedder: ~0.1% of the FLOPs at 1024²).
# Environment: HUNYUAN_CLI (default .build/release/hunyuan-cli, else .build/debug/hunyuan-cli),
# PYTHON (default /work/benchvenv/bin/python). Progress of both tools goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dtype=f16 size=full threads="1 2" sizes="1024 512" dir="" compute=fp32
. "$here/bench/bench-common.sh"
bench_options "dir dtype size threads sizes compute" "$@"
[ -n "$dir" ] || dir="$HOME/.cache/hunyuan-bench/t2i-${size}-${dtype}"

if [ ! -f "$dir/model_index.json" ]; then
  echo "making $dir ($size, $dtype) …" >&2
  mkdir -p "$(dirname "$dir")"
  (cd "$here" && "$cli" t2i-random "$dir" --size "$size" --dtype "$dtype" >&2)
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
runs=()
for t in $threads; do
  first=1
  for s in $sizes; do
    skip=()
    [ "$first" = 1 ] || skip=(--skip-encoders)
    first=0
    echo "ours, $t threads, ${s}² …" >&2
    "$cli" t2i-bench "$dir" --threads "$t" --height "$s" --width "$s" --compute "$compute" "${skip[@]}" > "$tmp/ours-$t-$s.md"
    echo "PyTorch, $t threads, ${s}² …" >&2
    "$py" "$here/bench/t2i-diffusers.py" "$dir" --threads "$t" --height "$s" --width "$s" "${skip[@]}" > "$tmp/torch-$t-$s.md"
    runs+=("$t-$s")
  done
done

echo "## HunyuanDiT v1.1 text to image — $(basename "$dir"), threads $threads, sizes $sizes, $(date -u +%Y-%m-%d)"
echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo
for r in "${runs[@]}"; do
  echo "### ours, ${r%%-*} threads, ${r##*-}²"; echo; cat "$tmp/ours-$r.md"; echo
  echo "### PyTorch, ${r%%-*} threads, ${r##*-}²"; echo; cat "$tmp/torch-$r.md"; echo
done
echo "### side by side (seconds; load not included)"
echo
echo "| component | threads | ours s | PyTorch s | PyTorch / ours | bound s | ours % of bound | ours peak RSS GB | PyTorch peak RSS GB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in "${runs[@]}"; do
  # Join on the stage name (column 1): seconds column 3, bound column 5, % of bound column 6, RSS column 7.
  awk -F'|' -v threads="${r%%-*}" '
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    FNR == 1 { file++ }
    /^\| / && $2 !~ /stage|---/ {
      st = trim($2)
      if (file == 1) { order[++n] = st; ours[st] = trim($4); bound[st] = trim($6); eff[st] = trim($7); ours_rss[st] = trim($8) }
      else { torch[st] = trim($4); torch_rss[st] = trim($8) }
    }
    END {
      for (i = 1; i <= n; i++) {
        st = order[i]; t = (st in torch) ? torch[st] : "-"
        ratio = (t != "-" && ours[st] + 0 > 0) ? sprintf("%.2f", t / ours[st]) : "-"
        print "| " st " | " threads " | " ours[st] " | " t " | " ratio " | " bound[st] " | " eff[st] " | " ours_rss[st] " | " ((st in torch_rss) ? torch_rss[st] : "-") " |"
      }
    }' "$tmp/ours-$r.md" "$tmp/torch-$r.md"
done
