"""Marching cubes on a signed-distance field, clean-up, decimation, export and a preview image.

    python examples/python/mesh_from_sdf.py OUT_DIR
"""
import sys
from pathlib import Path

import numpy as np

import hunyuan

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
out.mkdir(parents=True, exist_ok=True)

n = 96
x, y, z = np.meshgrid(*[np.linspace(-1.2, 1.2, n, dtype=np.float32)] * 3, indexing="ij")
torus = np.sqrt((np.sqrt(x * x + y * y) - 0.7) ** 2 + z * z) - 0.25  # SDF: negative inside

with hunyuan.mesh_from_grid(torus, level=0.0, bounds=((-1.2,) * 3, (1.2,) * 3)) as mesh:
    print("marching cubes:", mesh, "watertight:", mesh.is_watertight)
    mesh.simplify(4000).smooth(2)
    mesh.colors = (np.array(mesh.vertices) * 0.4 + 0.5).clip(0, 1)  # colour by position
    mesh.save(out / "torus.glb", overwrite=True)
    mesh.preview(out / "torus.png", size=384, overwrite=True)
    s = mesh.stats()
    print(f"decimated: {s['faces']} faces, volume {s['volume']:.4f} (analytic {2 * np.pi**2 * 0.7 * 0.25**2:.4f})")
    print("wrote", out / "torus.glb", "and", out / "torus.png")
