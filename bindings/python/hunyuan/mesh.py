"""Triangle meshes owned by libhunyuan, exposed to numpy without copies."""
from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import numpy as np

from . import _native

_POSITIONS, _FACES, _COLORS, _NORMALS, _UVS = range(5)


class Mesh:
    """A triangle mesh: ``vertices`` float32 [V, 3], ``faces`` uint32 [F, 3] (counter-clockwise seen
    from outside), optional ``colors`` float32 [V, 3|4] in [0, 1], ``normals`` and ``uvs``.

    The arrays are read-only numpy views of the library's memory (no copy); they keep the mesh alive.
    While any of them is referenced, the methods that modify the mesh (``simplify``, ``smooth``,
    ``clean``, ...) raise ``BufferError``: copy the arrays (``np.array(mesh.vertices)``) or delete them
    first. Use as a context manager or call ``close()``; garbage collection also frees it."""

    def __init__(self, vertices, faces, colors=None):
        v = np.ascontiguousarray(vertices, dtype=np.float32)
        f = np.ascontiguousarray(faces, dtype=np.uint32)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError("vertices must be [V, 3] and faces [F, 3]")
        self._m = _native.mesh_new(v, f)
        if colors is not None:
            self._set_colors(colors)

    @classmethod
    def _wrap(cls, native) -> "Mesh":
        obj = cls.__new__(cls)
        obj._m = native
        return obj

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Mesh":
        """Reads .obj, .ply, .glb or .stl through the library."""
        return cls._wrap(_native.mesh_load(path))

    # -- arrays --------------------------------------------------------------------------------
    def _array(self, kind):
        view = self._m.view(kind)
        return None if view is None else np.asarray(view)

    @property
    def vertices(self) -> np.ndarray:
        return self._array(_POSITIONS)

    @property
    def faces(self) -> np.ndarray:
        return self._array(_FACES)

    @property
    def colors(self) -> Optional[np.ndarray]:
        return self._array(_COLORS)

    @property
    def normals(self) -> Optional[np.ndarray]:
        return self._array(_NORMALS)

    @property
    def uvs(self) -> Optional[np.ndarray]:
        return self._array(_UVS)

    def _set_colors(self, colors):
        if colors is None:
            self._m.set_colors(None, 3)
            return
        c = np.asarray(colors)
        if c.dtype == np.uint8:
            c = c.astype(np.float32) / 255.0
        c = np.ascontiguousarray(c, dtype=np.float32)
        if c.ndim != 2 or c.shape[1] not in (3, 4):
            raise ValueError("colors must be [V, 3] or [V, 4]")
        self._m.set_colors(c, c.shape[1])

    @colors.setter
    def colors(self, value):
        self._set_colors(value)

    # -- properties ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._m.counts()[1]

    def __repr__(self) -> str:
        v, f = self._m.counts()
        return f"<hunyuan.Mesh {v} vertices, {f} faces>"

    def stats(self) -> dict:
        """vertices, faces, bounds, watertight, winding_consistent, euler_characteristic, components,
        area, volume."""
        return self._m.stats()

    @property
    def bounds(self) -> Tuple[Tuple[float, float, float], Tuple[float, float, float]]:
        b = self.stats()["bounds"]
        return tuple(b[:3]), tuple(b[3:])

    @property
    def is_watertight(self) -> bool:
        return self.stats()["watertight"]

    @property
    def volume(self) -> float:
        return self.stats()["volume"]

    # -- verbs ---------------------------------------------------------------------------------
    def clean(self, merge_epsilon: float = 0.0, keep_largest: int = 0, min_component_faces: int = 0) -> "Mesh":
        self._m.clean(merge_epsilon, keep_largest, min_component_faces)
        return self

    def smooth(self, iterations: int = 1, method: str = "taubin") -> "Mesh":
        methods = {"taubin": 0, "laplacian": 1}
        if method not in methods:
            raise ValueError(f"method must be one of {sorted(methods)}")
        self._m.smooth(iterations, methods[method])
        return self

    def simplify(self, target_faces: int) -> "Mesh":
        """Quadric-error decimation to at most target_faces faces (keeps closed meshes closed)."""
        self._m.simplify(target_faces)
        return self

    def cluster(self, voxel_size: float) -> "Mesh":
        """Open3D-style vertex clustering."""
        self._m.cluster(voxel_size)
        return self

    def compute_normals(self) -> "Mesh":
        self._m.compute_normals()
        return self

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Writes .obj/.ply/.glb/.stl (format from the extension); an existing file is replaced only
        with overwrite=True; a failure leaves no file."""
        self._m.save(path, overwrite)

    export = save

    def preview(self, path: str | os.PathLike, size: int = 512, overwrite: bool = False) -> None:
        """Writes a PNG with a 2x2 grid of shaded views."""
        self._m.preview(path, size, overwrite)

    def to_trimesh(self):
        """A trimesh.Trimesh copy (requires the trimesh package)."""
        import trimesh

        colors = self.colors
        kw = {}
        if colors is not None:
            kw["vertex_colors"] = (np.clip(colors, 0, 1) * 255).round().astype(np.uint8)
        return trimesh.Trimesh(np.array(self.vertices), np.array(self.faces, dtype=np.int64), process=False, **kw)

    def close(self) -> None:
        self._m.close()

    def __enter__(self) -> "Mesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mesh_from_grid(grid, level: float = 0.0, bounds: Optional[Sequence] = None, inside_above: bool = False,
                   n_threads: int = 0, edge_vertices_only: bool = False) -> Mesh:
    """Marching cubes over a float32 grid [X, Y, Z] (C order). bounds: ((x0, y0, z0), (x1, y1, z1)) mapping
    the first and last samples, or None for voxel-index coordinates. Values below level are inside
    unless inside_above (density convention). edge_vertices_only: no centre vertices in the rare cells
    that need one for a manifold surface, i.e. exactly the vertex set of PyMCubes / scikit-image."""
    g = np.ascontiguousarray(grid, dtype=np.float32)
    if g.ndim != 3:
        raise ValueError("grid must be 3-dimensional [X, Y, Z]")
    b = None
    if bounds is not None:
        lo, hi = bounds
        b = tuple(float(x) for x in (*lo, *hi))
    flags = (1 if inside_above else 0) | (2 if edge_vertices_only else 0)
    return Mesh._wrap(_native.mesh_from_grid(g, g.shape, b, float(level), flags, int(n_threads)))
