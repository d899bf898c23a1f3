#!/usr/bin/env bash
# `make demo`: the best real thing the library can do on this machine without downloads.
set -euo pipefail
cli=build/hunyuan-cli
shared=${HUNYUAN_SHARED:-../shared}
echo "== hunyuan $($cli --version)" >&2
$cli system
fixture="$shared/fixtures/lm/hunyuan-large-tiny-bf16-sharded"
if [ -d "$fixture" ]; then
  echo "== validating and listing a sharded bf16 Hunyuan-Large checkpoint: $fixture" >&2
  $cli inspect "$fixture" | head -8
else
  echo "(no fixtures at $shared: set HUNYUAN_SHARED to show a checkpoint)" >&2
fi
