"""Helpers shared by the PyTorch anchors of the hunyuan-cli benchmarks (bench/mvd-diffusers.py,
bench/t2i-diffusers.py): peak RSS, hunyuan-cli's number format, timing, and the stage table in the
layout of `mvd-bench` / `t2i-bench` (the bench/*.sh scripts join the two tables on the stage name)."""
import resource
import sys
import time


def rss_gb():
    """Peak resident set size of this process so far (ru_maxrss), in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def fmt(v):
    """As hunyuan-cli's BenchSupport.fmt: integers from 100, 2 decimals from 1, 3 from 0.01, else 5."""
    if v is None:
        return "-"
    if v >= 100:
        return str(int(round(v)))
    if v >= 1:
        return str(round(v, 2))
    if v >= 0.01:
        return str(round(v, 3))
    return str(round(v, 5))


def log(s):
    print(s, file=sys.stderr, flush=True)


def timed(fn):
    """(fn(), seconds)."""
    t0 = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t0


def print_table(rows):
    """rows: (stage, load s or None, seconds, peak RSS GB); FLOP columns are hunyuan-cli's alone."""
    print("| stage | load s | seconds | GFLOP | bound s | % of bound | peak RSS GB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stage, l, s, r in rows:
        print(f"| {stage} | {fmt(l)} | {fmt(s)} | - | - | - | {fmt(r)} |")


class Stages(list):
    """The timed stages of a run: (stage, load s or None, seconds, peak RSS GB when it ended)."""

    def add(self, stage, load, secs):
        self.append((stage, load, secs, rss_gb()))
        log(f"{stage}: {fmt(secs)} s" + (f" (load {fmt(load)} s)" if load is not None else ""))


def check_components(d, components, low_cpu_mem_usage_off=()):
    """Loads each (class, subfolder) of folder `d` in fp32 with from_pretrained(output_loading_info=True)
    and prints its parameter count and its missing / unexpected / mismatched tensors and whether every
    weight is finite; returns the number of problems. `low_cpu_mem_usage_off`: the subfolders to load
    with low_cpu_mem_usage=False (diffusers then reports the loading info)."""
    import torch
    bad = 0
    for cls, sub in components:
        kw = dict(low_cpu_mem_usage=False) if sub in low_cpu_mem_usage_off else {}
        m, info = cls.from_pretrained(d, subfolder=sub, torch_dtype=torch.float32, output_loading_info=True, **kw)
        miss, unexp = info.get("missing_keys", []), info.get("unexpected_keys", [])
        mism = info.get("mismatched_keys", [])
        n = sum(p.numel() for p in m.parameters())
        finite = all(torch.isfinite(p).all() for p in m.parameters())
        print(f"{sub}: {cls.__name__}, {n:,} parameters, missing {len(miss)}, unexpected {len(unexp)}, "
              f"mismatched {len(mism)}, finite {finite}" + (f" {miss[:3]} {unexp[:3]}" if miss or unexp else ""))
        bad += len(miss) + len(unexp) + len(mism) + (not finite)
        del m
    return bad
