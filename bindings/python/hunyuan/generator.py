"""Hunyuan3D-1.0 text / image → 3D (lite): text to image, background removal, six views, reconstruction."""
from __future__ import annotations

import os
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _native
from .mesh import Mesh
from .recon import load_image

ImageLike = Union[str, os.PathLike, np.ndarray, Any]


def _pixels(image: ImageLike) -> np.ndarray:
    """uint8 [H, W, 3|4] from a path, a numpy array or a PIL image (converted to RGB / RGBA)."""
    if isinstance(image, (str, os.PathLike)):
        a = load_image(image)
    elif isinstance(image, np.ndarray):
        a = image
    elif hasattr(image, "mode") and hasattr(image, "convert"):  # a PIL image, without importing PIL
        a = np.asarray(image.convert("RGBA" if "A" in image.mode or image.mode == "P" else "RGB"))
    else:
        raise TypeError("image must be a path, a uint8 numpy array [H, W, 3|4] or a PIL image")
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError("image must be uint8 [H, W, 3] or [H, W, 4]")
    return np.ascontiguousarray(a)


class Generator:
    """Text / image → coloured mesh: a hunyuan3d-tiny folder (``hunyuan-cli train-3d``) is the small text-to-3D
    model (``text_to_3d`` only; the image methods raise UnsupportedError), any other path a weights folder laid out like the release (``mvd_lite/``,
    ``svrm/svrm.safetensors``, ``u2net.onnx`` — else rembg's ``$U2NET_HOME`` / ``~/.u2net``; ``u2net=`` names
    another — and ``hunyuanDiT/`` for text; a folder with only ``hunyuanDiT/`` opens for ``text_to_image``). Each stage is loaded when it runs and released after it unless ``keep_loaded``. One call at a
    time per instance; the GIL is released while it runs, and Ctrl-C or a progress callback returning False
    cancels it (AbortedError) with the generator still usable."""

    def __init__(self, path: Union[str, os.PathLike], n_threads: int = 0, u2net: Optional[Union[str, os.PathLike]] = None,
                 keep_loaded: bool = False):
        self._g = _native.Generator(path, n_threads, os.fspath(u2net) if u2net is not None else None, keep_loaded)

    def image_to_3d(self, image: ImageLike, steps: int = 50, seed: int = 0, resolution: int = 384,
                    faces: int = 90000, keep_alpha: bool = False, compute: str = "fp32", grid_width: int = 640,
                    grid_height: int = 960, progress: Optional[Callable[[float], bool]] = None) -> Mesh:
        """image: a PNG/JPEG path, a uint8 array [H, W, 3|4] or a PIL image. ``progress(fraction)`` gets the
        fraction of the whole run (background removal, views, reconstruction). Returns the mesh with vertex
        colours, in the official export axes."""
        a = _pixels(image)
        return Mesh._wrap(self._g.image_to_mesh(a.tobytes(), a.shape[1], a.shape[0], a.shape[2], int(steps), int(seed),
                                                int(resolution), int(faces), bool(keep_alpha), compute,
                                                int(grid_width), int(grid_height), progress))

    def text_to_image(self, prompt: str, steps: int = 25, seed: int = 0, width: int = 1024, height: int = 1024,
                      guidance_scale: float = 5.0, pag_scale: float = 1.3, compute: str = "fp32",
                      progress: Optional[Callable[[float], bool]] = None) -> np.ndarray:
        """Hunyuan3D-1.0's text to image (HunyuanDiT v1.1 with PAG; the official style suffix and negative prompt
        are added): uint8 [height, width, 3]. The official 1024² / 25 steps is hours on a laptop CPU;
        512² with ``steps=15, pag_scale=0`` is about a tenth of it."""
        px, w, h = self._g.text_to_image(str(prompt), int(seed), int(steps), int(width), int(height),
                                         float(guidance_scale), float(pag_scale), compute, progress)
        return np.frombuffer(px, dtype=np.uint8).reshape(h, w, 3)

    def text_to_3d(self, prompt: str, seed: int = 0, text_steps: int = 25, width: int = 1024, height: int = 1024,
                   guidance_scale: float = 5.0, pag_scale: float = 1.3, compute: str = "fp32", steps: int = 50,
                   resolution: Optional[int] = None, faces: int = 90000, grid_width: int = 640, grid_height: int = 960,
                   smooth: int = 2, progress: Optional[Callable[[float], bool]] = None) -> Mesh:
        """Prompt → picture (``text_to_image``) → mesh (``image_to_3d`` on it), as main.py; on
        a hunyuan3d-tiny model prompt → triplanes → mesh in seconds (only ``resolution``, ``faces`` and
        ``smooth`` apply). ``resolution`` None is the model's default (384; 128 for hunyuan3d-tiny).
        ``progress(fraction)`` gets the fraction of the whole run."""
        return Mesh._wrap(self._g.text_to_mesh(str(prompt), int(seed), int(text_steps), int(width), int(height),
                                               float(guidance_scale), float(pag_scale), compute, int(steps),
                                               0 if resolution is None else int(resolution), int(faces),
                                               int(grid_width), int(grid_height), int(smooth), progress))

    def remove_background(self, image: ImageLike, keep_alpha: bool = False) -> np.ndarray:
        """The official background removal alone: uint8 [512, 512, 4]."""
        a = _pixels(image)
        px, w, h = self._g.remove_background(a.tobytes(), a.shape[1], a.shape[0], a.shape[2], bool(keep_alpha))
        return np.frombuffer(px, dtype=np.uint8).reshape(h, w, 4)

    def close(self) -> None:
        self._g.close()

    def __enter__(self) -> "Generator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
