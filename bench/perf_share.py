"""Share of on-CPU samples spent inside a function family, from `perf script` output of a run recorded with call
graphs (`perf record -F 99 --call-graph dwarf,8192 ...`): a sample counts when any frame of its stack matches the
pattern (default: the attention kernels of HunyuanNN — `attention`, `attentionTiled`, `attentionRows`,
`attentionTiles` and the closures inside them, not their backward).

usage: perf script -i perf.data | python3 bench/perf_share.py [REGEX]"""
import re
import sys

pattern = re.compile(sys.argv[1] if len(sys.argv) > 1 else r"\$s9HunyuanNN\d+attention(?!Backward)")
total = hits = 0
stack_hit = False
in_sample = False
for line in sys.stdin:
    if not line.strip():
        if in_sample:
            total += 1
            hits += stack_hit
        in_sample = stack_hit = False
        continue
    if not line.startswith((" ", "\t")):
        in_sample = True  # the sample's header line
        continue
    if pattern.search(line):
        stack_hit = True
if in_sample:
    total += 1
    hits += stack_hit
print(f"{hits} of {total} samples ({100.0 * hits / max(total, 1):.1f}%) match {pattern.pattern}")
