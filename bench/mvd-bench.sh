#!/usr/bin/env bash
# Hunyuan3D-1.0 lite multi-view diffusion: ours (hunyuan-cli mvd-bench) vs PyTorch / diffusers
# (bench/mvd-diffusers.py) on the same random-weight folder, same threads, one after the other.
#
#   bench/mvd-bench.sh [--dir DIR] [--dtype f16|f32] [--threads N] [--steps N] [--hunyuan3d PATH] [--size full|tiny]
#                      [--compute fp32|bf16]
#
# Makes DIR with `hunyuan-cli mvd-random` if it is missing (default /work/benchcache/mvd-full-<dtype>), runs
# ours then PyTorch (fp32 on the CPU; the official Hunyuan3d_MVD_Lite_Pipeline when --hunyuan3d points at a
# checkout of Tencent/Hunyuan3D-1, else the components loaded with diffusers / transformers), and writes to
# stdout both tables and a joined markdown table: stage | ours s | PyTorch s | PyTorch / ours | RSS.
# --steps N adds a whole N-step run on both sides (the single stages are timed as well).
# Environment: HUNYUAN_CLI (default .build/release/hunyuan-cli, else .build/debug/hunyuan-cli),
# PYTHON (default /work/benchvenv/bin/python). Progress of both tools goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dtype=f16 threads=2 steps=0 size=full dir="" hunyuan3d="" compute=fp32
. "$here/bench/bench-common.sh"
bench_options "dir dtype threads steps size hunyuan3d compute" "$@"
[ -n "$dir" ] || dir="/work/benchcache/mvd-${size}-${dtype}"

if [ ! -f "$dir/model_index.json" ]; then
  echo "making $dir ($size, $dtype) …" >&2
  "$cli" mvd-random "$dir" --size "$size" --dtype "$dtype" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
stage_args=()
[ "$steps" -gt 0 ] && stage_args=(--steps "$steps" --stages)
echo "ours …" >&2
"$cli" mvd-bench "$dir" --threads "$threads" --compute "$compute" "${stage_args[@]}" > "$tmp/ours.md"
echo "PyTorch …" >&2
py_args=("$dir" --threads "$threads" "${stage_args[@]}")
[ -n "$hunyuan3d" ] && py_args+=(--hunyuan3d "$hunyuan3d")
"$py" "$here/bench/mvd-diffusers.py" "${py_args[@]}" > "$tmp/torch.md"

echo "## Hunyuan3D-1.0 lite multi-view diffusion — $(basename "$dir"), $threads threads, $(date -u +%Y-%m-%d)"
echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo
echo "### ours"; echo; cat "$tmp/ours.md"; echo
echo "### PyTorch"; echo; cat "$tmp/torch.md"; echo
echo "### side by side (seconds; load not included)"
echo
# Join the two tables on the stage name (column 1): ours column 3 (seconds), PyTorch column 3, RSS column 7.
awk -F'|' '
  function trim(s) { gsub(/^ +| +$/, "", s); return s }
  FNR == 1 { file++ }
  /^\| / && $2 !~ /stage|---/ {
    st = trim($2)
    if (file == 1) { order[++n] = st; ours[st] = trim($4); ours_rss[st] = trim($8) }
    else { torch[st] = trim($4); torch_rss[st] = trim($8) }
  }
  END {
    print "| stage | ours s | PyTorch s | PyTorch / ours | ours peak RSS GB | PyTorch peak RSS GB |"
    print "|---|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
      st = order[i]; t = (st in torch) ? torch[st] : "-"
      r = (t != "-" && ours[st] + 0 > 0) ? sprintf("%.2f", t / ours[st]) : "-"
      print "| " st " | " ours[st] " | " t " | " r " | " ours_rss[st] " | " ((st in torch_rss) ? torch_rss[st] : "-") " |"
    }
  }' "$tmp/ours.md" "$tmp/torch.md"
