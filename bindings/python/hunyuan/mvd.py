"""Hunyuan3D-1.0 multi-view diffusion (lite): one image → six views."""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Union

import numpy as np

from . import _native
from .recon import Image, load_image


class MultiView:
    """The lite multi-view diffusion model, opened from the release's ``mvd_lite/`` folder as diffusers saves it
    (model_index.json, unet/, vae/, text_encoder/, tokenizer/, vision_encoder/, feature extractors, scheduler/).
    Each network is mapped when its stage runs. One call at a time per instance; the GIL is released while it
    runs, and Ctrl-C or a progress callback returning False cancels it (AbortedError).

    ``compute="bf16"`` holds the UNet's and the VAE's weights as bf16 and rounds activations to bf16 per
    product (fp32 sums): about 1.4× faster per step on CPUs with AVX512_BF16, elsewhere the same as "fp32"
    (the default, the reference numerics)."""

    def __init__(self, path: Union[str, os.PathLike], n_threads: int = 0, variant: Optional[str] = None,
                 compute: str = "fp32"):
        self._m = _native.MultiView(path, n_threads, variant, compute)
        self.grid: Optional[np.ndarray] = None

    def generate(self, image: Image, steps: int = 50, seed: int = 0, width: int = 640, height: int = 960,
                 progress: Optional[Callable[[float], bool]] = None) -> List[np.ndarray]:
        """image: a PNG/JPEG path or a uint8 array [H, W, 3|4] (RGBA backgrounds are whited out as the official
        pipeline does). Returns the six views (azimuth 0, 60, ..., 300) as uint8 [h, w, 3] arrays; the 3×2
        grid they were cut from is kept in ``self.grid``. ``seed`` seeds the library's own generator."""
        a = load_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
            raise ValueError("image must be uint8 [H, W, 3] or [H, W, 4]")
        a = np.ascontiguousarray(a)
        views, grid = self._m.generate(a.tobytes(), a.shape[1], a.shape[0], a.shape[2], int(steps), int(seed),
                                       int(width), int(height), progress)
        self.grid = np.frombuffer(grid[0], dtype=np.uint8).reshape(grid[2], grid[1], 3)
        return [np.frombuffer(p, dtype=np.uint8).reshape(h, w, 3) for p, w, h in views]

    def close(self) -> None:
        self._m.close()

    def __enter__(self) -> "MultiView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
