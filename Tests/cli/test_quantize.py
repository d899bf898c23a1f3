"""`hunyuan-cli quantize` and `bench`: the quantized safetensors layout decoded independently with
numpy (as documented on WeightFormat / in BENCHMARKS.md) against the source weights, logits of the
quantized model against the reference fixture logits, and the bench JSON contract."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file


def run(cli, *args, check=True):
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True, check=check)


def fixture(shared: Path, name="hunyuan-a13b-tiny"):
    d = shared / "fixtures" / "lm" / name
    if not (d / "reference.safetensors").exists():
        pytest.skip(f"LM fixture {d} not found")
    return d


def raw_tensors(path):
    """Every tensor of a safetensors file as (dtype name, shape, raw uint8 bytes), read from the header
    directly (numpy has no float8 dtype)."""
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    body = np.frombuffer(data, np.uint8, offset=8 + n)
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def f16(b):  # little-endian f16 bytes [..., 2] -> float32
    return b.copy().view(np.float16)[..., 0].astype(np.float32)


def decode(fmt, blocks, cols):
    """numpy decoder of the documented block layouts: U8 [rows, nBlocks, blockBytes] -> [rows, cols]."""
    rows = blocks.shape[0]
    if fmt == "q8_0":
        d = f16(blocks[:, :, 0:2])
        q = blocks[:, :, 2:34].view(np.int8).astype(np.float32)
        w = d[:, :, None] * q
    elif fmt == "q4_0":
        d = f16(blocks[:, :, 0:2])
        qs = blocks[:, :, 2:18]
        n = np.concatenate([qs & 0x0F, qs >> 4], axis=2).astype(np.float32) - 8
        w = d[:, :, None] * n
    elif fmt == "q4_k":
        d, dmin = f16(blocks[:, :, 0:2]), f16(blocks[:, :, 2:4])
        sc, mn = blocks[:, :, 4:12].astype(np.float32), blocks[:, :, 12:20].astype(np.float32)
        qs = blocks[:, :, 20:148].reshape(rows, -1, 8, 16)
        n = np.concatenate([qs & 0x0F, qs >> 4], axis=3).astype(np.float32)  # [rows, sb, 8, 32]
        w = (d[:, :, None, None] * sc[:, :, :, None]) * n - (dmin[:, :, None, None] * mn[:, :, :, None])
    else:
        raise ValueError(fmt)
    return w.reshape(rows, -1)[:, :cols]


E4M3 = np.array([(-1 if c & 0x80 else 1) * ((c & 7) / 8 * 2.0 ** -6 if (c >> 3) & 15 == 0
                  else (1 + (c & 7) / 8) * 2.0 ** (((c >> 3) & 15) - 7)) for c in range(256)], np.float32)

BOUND = {"q8_0": 0.01, "q4_0": 0.13, "q4_k": 0.11, "fp8": 0.04}  # relative RMS weight error


@pytest.mark.parametrize("fmt", ["q8_0", "q4_0", "q4_k", "fp8"])
def test_quantized_layout_and_logits(cli, shared, tmp_path, fmt):
    src = fixture(shared)
    out = tmp_path / fmt
    run(cli, "quantize", src, out, "--type", fmt)
    orig, q = load_file(str(src / "model.safetensors")), raw_tensors(out / "model.safetensors")
    name = "model.layers.0.mlp.experts.1.down_proj.weight"
    w = orig[name].astype(np.float32)
    dtype, shape, raw = q[name]
    if fmt == "fp8":
        assert dtype == "F8_E4M3" and shape == list(w.shape)
        sdt, sshape, sraw = q[name + "_scale"]
        assert sdt == "F32" and sshape == [w.shape[0]]
        deq = E4M3[raw.reshape(w.shape)] * sraw.view(np.float32)[:, None]
    else:
        assert dtype == "U8" and len(shape) == 3 and shape[0] == w.shape[0]
        deq = decode(fmt, raw.reshape(shape), w.shape[1])
    err = np.sqrt(((deq - w) ** 2).sum() / (w ** 2).sum())
    assert err < BOUND[fmt], (fmt, err)
    assert q["model.layers.0.mlp.gate.wg.weight"][0] == "F32"  # the router stays f32
    ref = load_file(str(src / "reference.safetensors"))
    ids = ",".join(str(int(i)) for i in ref["input_ids"])
    run(cli, "logits", out, "--tokens", ids, "--output", tmp_path / "l.npy")
    got = np.load(tmp_path / "l.npy")
    assert np.abs(got - ref["logits"]).mean() < {"q8_0": 0.05, "fp8": 0.12}.get(fmt, 0.3)


def test_bench_json_contract(cli, shared, tmp_path):
    src = fixture(shared)
    r = run(cli, "bench", src, "-p", "0", "-n", "3", "-t", "1", "--reps", "2", "--json")
    rows = json.loads(r.stdout)
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    for k in ("threads", "type", "prefill_tps", "decode_tps", "peak_rss", "model_bytes", "kv_bytes_per_token"):
        assert k in row
    assert row["prefill_tps"] is None and row["decode_tps"] > 0 and row["type"] == "f32"
    rows = json.loads(run(cli, "bench", src, "-p", "4", "-n", "0", "-t", "1,2", "--json").stdout)
    assert [x["threads"] for x in rows] == [1, 2]
    assert all(x["decode_tps"] is None and x["prefill_tps"] > 0 and x["peak_rss"] > 0 for x in rows)
