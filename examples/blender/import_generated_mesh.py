"""Headless Blender: register the Hunyuan add-on, make a mesh with the library and import it through
the add-on's File > Import operator.

    blender -b --python examples/blender/import_generated_mesh.py -- OUT_DIR
    python examples/blender/import_generated_mesh.py OUT_DIR      # with the bpy module (pip install bpy)
"""
import sys
from pathlib import Path

import bpy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "blender"))
import hunyuan  # noqa: E402
import hunyuan_blender  # noqa: E402

args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
out = Path(args[0] if args else "out")
out.mkdir(parents=True, exist_ok=True)

bpy.ops.wm.read_factory_settings(use_empty=True)
hunyuan_blender.register()

n = 64
x, y, z = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32)] * 3, indexing="ij")
blob = np.sqrt(x * x + y * y + z * z) - 0.6 + 0.08 * np.sin(6 * x) * np.sin(6 * y)
mesh = hunyuan.mesh_from_grid(blob, bounds=((-1,) * 3, (1,) * 3))
mesh.colors = (np.array(mesh.vertices) * 0.5 + 0.5).clip(0, 1)
path = out / "blob.glb"
mesh.save(path, overwrite=True)

bpy.ops.import_scene.hunyuan(filepath=str(path))
obj = bpy.context.view_layer.objects.active
print(f"imported {obj.name}: {len(obj.data.vertices)} vertices, {len(obj.data.polygons)} faces, "
      f"colour attributes {[a.name for a in obj.data.color_attributes]}")
hunyuan_blender.unregister()
