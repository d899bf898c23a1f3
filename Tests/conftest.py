"""Shared settings of the Python tests: where the CLI, the library and the shared fixtures are."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HUNYUAN_SHARED", ROOT.parent / "shared"))
CLI = Path(os.environ.get("HUNYUAN_CLI", ROOT / "build" / "hunyuan-cli"))
LIB = Path(os.environ.get("HUNYUAN_LIB", ROOT / "build" / "libhunyuan.so.0"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED} (set HUNYUAN_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def cli() -> Path:
    if not CLI.exists():
        pytest.fail(f"hunyuan-cli not built at {CLI} (run make build or set HUNYUAN_CLI)")
    return CLI


def lm_fixtures(shared: Path):
    """The LM fixture folders that hold a reference.safetensors (skips when there are none)."""
    root = shared / "fixtures" / "lm"
    dirs = sorted(d for d in root.iterdir() if (d / "reference.safetensors").exists()) if root.is_dir() else []
    if not dirs:
        pytest.skip(f"no LM fixtures in {root}")
    return dirs


def run(cli, *args, check=True):
    """hunyuan-cli with `args` (paths allowed), text output captured."""
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True, check=check)


# Hunyuan's official pre-tokenizer pattern and special tokens (tokenization_hy.py), for the tiktoken
# references of the tokenizer tests.
PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
       r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
SPECIALS = ["<|endoftext|>", "<|startoftext|>", "<|bos|>", "<|eos|>", "<|pad|>"] + \
    [f"<|extra_{i}|>" for i in range(204)]
