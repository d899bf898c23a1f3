#!/usr/bin/env python3
"""Writes safetensors test files with the Python `safetensors` package (the reference implementation)
plus deliberately broken variants, and a manifest.json saying what a reader must report for each.

usage: make_safetensors_cases.py OUT_DIR
"""
import json
import os
import struct
import sys

import numpy as np
import safetensors
from safetensors.numpy import save_file

# Values exactly representable in every float format we test (f32, f16, bf16, f8_e4m3).
VALUES = [0.0, 1.0, -2.0, 0.5, 1.5, -0.25, 3.0, 0.125, 448.0, -448.0, 0.015625, 6.0]

# dtype name in the safetensors Python API, the header name, numpy dtype used to build the bytes.
RAW_DTYPES = {
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
}


def bf16_bytes(values):
    f = np.asarray(values, dtype=np.float32).view(np.uint32)
    return (f >> 16).astype(np.uint16).tobytes()


def e4m3_bytes(values):
    out = []
    for v in values:
        sign = 0x80 if v < 0 or (v == 0 and np.signbit(v)) else 0
        a = abs(v)
        best, err = 0, float("inf")
        for code in range(0x7F):
            e, m = (code >> 3) & 0xF, code & 7
            x = (m / 8) * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
            if abs(x - a) < err:
                best, err = code, abs(x - a)
        assert err == 0, v
        out.append(sign | best)
    return bytes(out)


def serialize_raw(tensors, path):
    """tensors: {name: (api_dtype, shape, bytes)} written through safetensors.serialize_file."""
    keep = []
    if hasattr(safetensors, "TensorSpec"):
        specs = {}
        for name, (dt, shape, data) in tensors.items():
            arr = np.frombuffer(data, dtype=np.uint8).copy()
            keep.append(arr)
            specs[name] = safetensors.TensorSpec(dtype=dt, shape=list(shape), data_ptr=arr.ctypes.data, data_len=arr.nbytes)
        safetensors.serialize_file(specs, path)
    else:
        safetensors.serialize_file({n: {"dtype": dt, "shape": list(s), "data": d} for n, (dt, s, d) in tensors.items()}, path)


def raw_file(path, header, data=b"", header_len=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(h) if header_len is None else header_len
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", n) + h + data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    manifest = {"valid": [], "broken": []}

    # every dtype, through the reference writer
    vals = np.array(VALUES, dtype=np.float32).reshape(3, 4)
    save_file({
        "f32": vals,
        "f16": vals.astype(np.float16),
        "i8": np.array([[-128, -1, 0, 127]], dtype=np.int8),
        "u8": np.array([0, 1, 254, 255], dtype=np.uint8),
        "i32": np.array([-(2 ** 31), -5, 7, 2 ** 31 - 1], dtype=np.int32),
        "i64": np.array([-(2 ** 40), 3, 9, 2 ** 40], dtype=np.int64),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }, os.path.join(out, "numpy_dtypes.safetensors"), metadata={"format": "np", "note": "written by safetensors"})
    serialize_raw({
        "bf16": ("bfloat16", [3, 4], bf16_bytes(VALUES)),
        "f8": ("float8_e4m3fn", [12], e4m3_bytes(VALUES)),
    }, os.path.join(out, "raw_dtypes.safetensors"))
    manifest["valid"] += [
        {"file": "numpy_dtypes.safetensors", "metadata": {"format": "np", "note": "written by safetensors"},
         "tensors": {
             "f32": {"dtype": "F32", "shape": [3, 4], "values": VALUES},
             "f16": {"dtype": "F16", "shape": [3, 4], "values": VALUES},
             "i8": {"dtype": "I8", "shape": [1, 4], "values": [-128, -1, 0, 127]},
             "u8": {"dtype": "U8", "shape": [4], "values": [0, 1, 254, 255]},
             "i32": {"dtype": "I32", "shape": [4], "values": [-(2 ** 31), -5, 7, 2 ** 31 - 1]},
             "i64": {"dtype": "I64", "shape": [4], "values": [-(2 ** 40), 3, 9, 2 ** 40]},
             "scalar": {"dtype": "F32", "shape": [], "values": [2.5]},
             "empty": {"dtype": "F32", "shape": [0, 3], "values": []},
         }},
        {"file": "raw_dtypes.safetensors", "metadata": {},
         "tensors": {
             "bf16": {"dtype": "BF16", "shape": [3, 4], "values": VALUES},
             "f8": {"dtype": "F8_E4M3", "shape": [12], "values": VALUES},
         }},
    ]

    # a sharded checkpoint folder, as save_pretrained writes it
    shard_dir = os.path.join(out, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = -np.arange(4, dtype=np.float32)
    save_file({"layer.a": a}, os.path.join(shard_dir, "model-00001-of-00002.safetensors"))
    save_file({"layer.b": b}, os.path.join(shard_dir, "model-00002-of-00002.safetensors"))
    index = {"metadata": {"total_size": 40}, "weight_map": {
        "layer.a": "model-00001-of-00002.safetensors", "layer.b": "model-00002-of-00002.safetensors"}}
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)
    manifest["valid"].append({"file": "sharded", "metadata": None, "tensors": {
        "layer.a": {"dtype": "F32", "shape": [2, 3], "values": a.ravel().tolist()},
        "layer.b": {"dtype": "F32", "shape": [4], "values": b.tolist()}}})

    # broken files: each must give the status named, with a message containing `contains`
    good = open(os.path.join(out, "numpy_dtypes.safetensors"), "rb").read()
    hlen = struct.unpack("<Q", good[:8])[0]

    def broken(name, status, contains, data=None, header=None, payload=b"", header_len=None):
        p = os.path.join(out, name)
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
        else:
            raw_file(p, header, payload, header_len)
        manifest["broken"].append({"file": name, "status": status, "contains": contains})

    t = lambda dt, shape, o: {"dtype": dt, "shape": shape, "data_offsets": o}
    broken("truncated.safetensors", "format", "truncated", data=good[:-7])
    broken("header_past_eof.safetensors", "format", "past the end", data=struct.pack("<Q", 10_000) + b"{}")
    broken("header_too_big.safetensors", "format", "100 MB", data=struct.pack("<Q", 200_000_000) + b"{}")
    broken("short.safetensors", "format", "too short", data=b"\x01\x02\x03")
    broken("empty.safetensors", "format", "too short", data=b"")
    broken("not_json.safetensors", "format", "invalid JSON", header=b"this is not json")
    broken("not_object.safetensors", "format", "not a JSON object", header=[1, 2, 3])
    broken("not_utf8.safetensors", "format", "UTF-8", header=b'{"\xff\xfe": 1}')
    broken("overlap.safetensors", "format", "overlaps",
           header={"a": t("F32", [2], [0, 8]), "b": t("F32", [2], [4, 12])}, payload=bytes(12))
    broken("outside.safetensors", "format", "outside the data",
           header={"a": t("F32", [4], [0, 16])}, payload=bytes(8))
    broken("gap.safetensors", "format", "gap",
           header={"a": t("F32", [1], [0, 4]), "b": t("F32", [1], [8, 12])}, payload=bytes(12))
    broken("trailing.safetensors", "format", "holds",
           header={"a": t("F32", [1], [0, 4])}, payload=bytes(8))
    broken("unknown_dtype.safetensors", "format", "unknown dtype",
           header={"a": t("F128", [1], [0, 16])}, payload=bytes(16))
    broken("shape_mismatch.safetensors", "format", "data_offsets span",
           header={"a": t("F32", [3], [0, 8])}, payload=bytes(8))
    broken("overflow.safetensors", "format", "overflow",
           header={"a": t("F32", [2 ** 62, 2 ** 62], [0, 0])})
    broken("duplicate.safetensors", "format", "duplicate",
           header=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
           payload=bytes(8))
    broken("bad_offsets.safetensors", "format", "data_offsets",
           header={"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, payload=bytes(4))
    broken("deep.safetensors", "format", "nesting", header=b"[" * 5000 + b"]" * 5000)
    broken("missing.safetensors", "io", "missing.safetensors", data=None, header={})
    os.remove(os.path.join(out, "missing.safetensors"))

    # sharded folders whose index disagrees with the shards
    for name, wm, status, contains in [
        ("shard_missing", {"layer.a": "model-00001-of-00002.safetensors", "layer.b": "model-00009-of-00002.safetensors"}, "io", "missing"),
        ("shard_wrong", {"layer.a": "model-00002-of-00002.safetensors", "layer.b": "model-00002-of-00002.safetensors"}, "format", "layer.a"),
        ("shard_unlisted", {"layer.a": "model-00001-of-00002.safetensors", "layer.b": "model-00002-of-00002.safetensors"}, "format", "layer.c"),
    ]:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        first = {"layer.a": a, "layer.c": b} if name == "shard_unlisted" else {"layer.a": a}
        save_file(first, os.path.join(d, "model-00001-of-00002.safetensors"))
        save_file({"layer.b": b}, os.path.join(d, "model-00002-of-00002.safetensors"))
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"weight_map": wm}, f)
        manifest["broken"].append({"file": name, "status": status, "contains": contains})
    os.makedirs(os.path.join(out, "no_weights"), exist_ok=True)
    manifest["broken"].append({"file": "no_weights", "status": "io", "contains": "no model.safetensors"})

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(manifest['valid'])} valid and {len(manifest['broken'])} broken cases to {out}")


if __name__ == "__main__":
    main()
