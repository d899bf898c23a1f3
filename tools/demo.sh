#!/usr/bin/env bash
# `make demo`: the best real thing the library can do on this machine without downloads.
set -euo pipefail
cli=build/hunyuan-cli
shared=${HUNYUAN_SHARED:-../shared}
out=build/demo
mkdir -p "$out"
say() { printf '\n== %s\n' "$*" >&2; }

say "hunyuan $($cli --version) on: $($cli system | tail -1)"

say "built-in model hunyuan-tiny: Hunyuan-Large architecture (CLA, 1 shared + 8 routed experts, recycle routing), trained on a CPU by our trainer; streamed"
for prompt in "ROMEO:" "却说曹操"; do
  printf '%s' "$prompt"
  $cli generate builtin:hunyuan-tiny --prompt "$prompt" --max-tokens 96 --seed 1
  printf '\n'
done

fixture="$shared/fixtures/lm/hunyuan-large-tiny"
if [ -d "$fixture" ]; then
  say "Hunyuan-Large architecture (CLA, MoE + shared expert, QK-norm, alpha-RoPE): greedy decoding of the official fixture"
  ids=$(build/../.venv/bin/python - "$fixture" <<'PY' 2>/dev/null || true
import sys
from safetensors.numpy import load_file
r = load_file(sys.argv[1] + "/reference.safetensors")
print(",".join(str(int(i)) for i in r["input_ids"]), " ".join(str(int(i)) for i in r["greedy_ids"]))
PY
)
  if [ -n "$ids" ]; then
    prompt=${ids%% *}; expected=${ids#* }
    got=$($cli generate "$fixture" --tokens "$prompt" --max-tokens $(echo $expected | wc -w) --greedy)
    echo "prompt ids:      $prompt"
    echo "ours:            $got"
    echo "official model:  $expected"
    [ "$got" = "$expected" ] && echo "identical to Tencent's reference implementation" || echo "DIFFERENT from the reference"
  fi
  $cli bench "$fixture" -p 32 -n 32 -t 1 2>/dev/null | tail -3 || true
fi

tok="$shared/data/tokenizer"
if [ -d "$tok" ]; then
  say "Hunyuan tokenizer (hy.tiktoken, 128,166 ids)"
  for text in "Hunyuan runs on an ordinary CPU." "话说天下大势，分久必合，合久必分。"; do
    ids=$(printf '%s' "$text" | $cli tokenize --tokenizer "$tok" --no-wrap)
    echo "$text -> $ids"
  done
  say "chat format of Hunyuan-Large Instruct"
  $cli chat-tokenize --tokenizer "$tok" --system "You are a helpful assistant." --user "Hello"
fi

say "mesh engine: marching cubes of a gyroid inside a sphere, decimated, exported as GLB with a preview"
.venv/bin/python - "$out" <<'PY'
import sys
import numpy as np
import hunyuan
out = sys.argv[1]
n = 128
x, y, z = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32)] * 3, indexing="ij")
s = 2 * np.pi * 1.5
gyroid = np.sin(s * x) * np.cos(s * y) + np.sin(s * y) * np.cos(s * z) + np.sin(s * z) * np.cos(s * x)
field = np.maximum(np.abs(gyroid) - 0.35, np.sqrt(x * x + y * y + z * z) - 0.9)
mesh = hunyuan.mesh_from_grid(field, bounds=((-1,) * 3, (1,) * 3))
s0 = mesh.stats()
mesh.simplify(60000)
mesh.colors = (np.array(mesh.vertices) * 0.5 + 0.5).clip(0, 1)
mesh.save(f"{out}/gyroid.glb", overwrite=True)
mesh.preview(f"{out}/gyroid.png", size=512, overwrite=True)
s1 = mesh.stats()
print(f"{s0['faces']} faces -> {s1['faces']} after decimation; watertight {s1['watertight']}; "
      f"genus {int((2 - s1['euler_characteristic']) // 2)}; wrote {out}/gyroid.glb and {out}/gyroid.png")
PY
