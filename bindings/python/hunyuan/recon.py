"""Hunyuan3D-1.0 sparse-view reconstruction: 7 views → a coloured mesh."""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import _native
from .mesh import Mesh

Image = Union[str, os.PathLike, np.ndarray]


def load_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """uint8 [H, W, 3|4] from a PNG or JPEG file, decoded by the library (RGBA only for PNGs with alpha)."""
    pixels, w, h, c = _native.image_load(path)
    return np.frombuffer(pixels, dtype=np.uint8).reshape(h, w, c)


class Reconstructor:
    """The sparse-view reconstruction model (SVRM) of Hunyuan3D-1.0, loaded from its folder (svrm.safetensors
    under the official names, optional config.json). One call at a time per instance; the GIL is released
    while it runs and Ctrl-C or a progress callback returning False cancels it."""

    def __init__(self, path: Union[str, os.PathLike], n_threads: int = 0):
        self._r = _native.Reconstructor(path, n_threads)
        self.info = self._r.info()

    def views_to_mesh(self, views: Sequence[Image], resolution: int = 384, faces: int = 90000,
                      cluster_size: float = 0.007, smooth: int = 2, export_axes: bool = True,
                      progress: Optional[Callable[[float], bool]] = None) -> Mesh:
        """views: the six generated views (azimuth 0, 60, ..., 300) then the condition image, as file paths
        or uint8 arrays [H, W, 3|4] (square; RGBA is composited over white). Returns the mesh after the
        official post-processing (vertex clustering, smoothing, decimation to `faces`, 0 = keep all)."""
        packed = []
        for v in views:
            a = load_image(v) if isinstance(v, (str, os.PathLike)) else np.asarray(v)
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
                raise ValueError("each view must be uint8 [H, W, 3] or [H, W, 4]")
            a = np.ascontiguousarray(a)
            packed.append((a.tobytes(), a.shape[1], a.shape[0], a.shape[2]))
        return Mesh._wrap(self._r.views_to_mesh(packed, int(resolution), int(faces), float(cluster_size),
                                                int(smooth), bool(export_axes), progress))

    def close(self) -> None:
        self._r.close()

    def __enter__(self) -> "Reconstructor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
