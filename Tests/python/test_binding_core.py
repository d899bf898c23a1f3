"""The installed Python binding: import, errors, and checkpoint access against the Python
`safetensors` package reading the same files."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hunyuan
from safetensors.numpy import load_file, save_file


def test_imports_from_installed_wheel_not_source_tree():
    assert "site-packages" in hunyuan.__file__
    assert hunyuan.version().endswith("(abi 0)")
    assert "AVX2=" in hunyuan.system_info()


def test_bundles_every_nonsystem_library():
    pkg = Path(hunyuan.__file__).parent
    out = subprocess.run(["ldd", str(pkg / "libhunyuan.so.0")], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "=>" in line and "openblas" in line:
            assert str(pkg / "libs") in line, line
        assert "not found" not in line, line


def test_checkpoint_matches_safetensors_package(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"a.weight": rng.standard_normal((3, 5)).astype(np.float32),
               "b": rng.standard_normal(7).astype(np.float16),
               "c": np.arange(4, dtype=np.int64)}
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))
    ref = load_file(str(path))
    with hunyuan.Checkpoint(path) as ck:
        assert sorted(ck.keys()) == sorted(ref)
        for name, value in ref.items():
            np.testing.assert_array_equal(ck[name], value.astype(np.float32))
        assert ck.info()["b"][0] == "F16"


def test_errors_are_typed_and_carry_the_message(tmp_path):
    with pytest.raises(hunyuan.IOError) as e:
        hunyuan.Checkpoint(tmp_path / "missing.safetensors")
    assert "missing.safetensors" in str(e.value)
    assert isinstance(e.value, OSError) and isinstance(e.value, hunyuan.HunyuanError)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(hunyuan.FormatError, match="bad.safetensors"):
        hunyuan.Checkpoint(bad)
    with pytest.raises(TypeError):
        hunyuan.Checkpoint(None)


def test_closed_checkpoint_raises_instead_of_crashing(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"x": np.ones(2, np.float32)}, str(path))
    ck = hunyuan.Checkpoint(path)
    ck.close()
    ck.close()
    with pytest.raises(ValueError, match="closed"):
        ck["x"]
