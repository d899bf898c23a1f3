"""Safetensors checkpoints (single file or sharded folder), validated and memory-mapped by the library."""
from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from . import _native

DTYPE_NAMES = ["F32", "F16", "BF16", "F8_E4M3", "I8", "I32", "I64", "U8"]


class Checkpoint:
    """A checkpoint opened through libhunyuan: ``Checkpoint(path)`` with a ``.safetensors`` file or a
    folder (``model.safetensors`` or ``model.safetensors.index.json`` + shards).

    Use as a context manager or call :meth:`close`; it is also released when garbage-collected."""

    def __init__(self, path: str | os.PathLike):
        self._native = _native.Checkpoint(path)
        self._info = {name: (DTYPE_NAMES[dt], shape, nbytes) for name, dt, shape, nbytes in self._native.tensors()}

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._native.close()

    def keys(self):
        return list(self._info)

    def __contains__(self, name: str) -> bool:
        return name in self._info

    def __len__(self) -> int:
        return len(self._info)

    def info(self) -> Dict[str, Tuple[str, tuple, int]]:
        """name -> (dtype name, shape, stored bytes)."""
        return dict(self._info)

    def __getitem__(self, name: str) -> np.ndarray:
        """The tensor converted to float32."""
        if name not in self._info:
            raise KeyError(name)
        data = self._native.read_f32(name)
        return np.frombuffer(data, dtype=np.float32).reshape(self._info[name][1])
