"""Shared settings of the Python tests: where the CLI, the library and the shared fixtures are."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
