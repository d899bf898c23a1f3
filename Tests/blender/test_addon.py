"""The Blender add-on driven through bpy (Blender 4.2 as a Python module): registration, File > Import of
meshes written by the library, errors as operator reports, and the sidebar operators."""
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import hunyuan  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "blender"))
import hunyuan_blender  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def addon():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    hunyuan_blender.register()
    yield
    hunyuan_blender.unregister()


def sphere_mesh():
    n = 40
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32)] * 3, indexing="ij")
    grid = np.sqrt(x * x + y * y + z * z) - 0.7
    mesh = hunyuan.mesh_from_grid(grid, level=0.0, bounds=((-1, -1, -1), (1, 1, 1)))
    colors = (mesh.vertices * 0.5 + 0.5).astype(np.float32)
    return hunyuan.Mesh(mesh.vertices, mesh.faces, colors=colors)


@pytest.mark.parametrize("ext", [".glb", ".obj", ".ply"])
def test_import_matches_library(tmp_path, ext):
    mesh = sphere_mesh()
    path = tmp_path / f"sphere{ext}"
    mesh.save(path)
    loaded = hunyuan.Mesh.load(path)  # what the add-on imports
    before = set(bpy.data.objects.keys())
    assert bpy.ops.import_scene.hunyuan(filepath=str(path)) == {"FINISHED"}
    new = [bpy.data.objects[k] for k in set(bpy.data.objects.keys()) - before]
    assert len(new) == 1
    me = new[0].data
    assert len(me.vertices) == len(loaded.vertices)
    assert len(me.polygons) == len(loaded.faces)
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3), loaded.vertices, atol=1e-6)
    attr = me.color_attributes.get("Col")
    assert attr is not None and attr.domain == "POINT"
    rgba = np.empty(len(me.vertices) * 4, np.float32)
    attr.data.foreach_get("color", rgba)
    expected = np.asarray(loaded.colors, dtype=np.float32)
    if expected.dtype == np.uint8:
        expected = expected / 255.0
    np.testing.assert_allclose(rgba.reshape(-1, 4)[:, :3], expected[:, :3], atol=1.5 / 255)
    assert me.materials and me.materials[0].use_nodes


def test_import_several_files_at_once(tmp_path):
    mesh = sphere_mesh()
    for name in ("a.ply", "b.obj"):
        mesh.save(tmp_path / name)
    before = len(bpy.data.objects)
    bpy.ops.import_scene.hunyuan(directory=str(tmp_path), files=[{"name": "a.ply"}, {"name": "b.obj"}])
    assert len(bpy.data.objects) == before + 2


def test_corrupt_file_is_an_error_report_not_a_crash(tmp_path):
    bad = tmp_path / "broken.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(RuntimeError, match="broken.glb"):
        bpy.ops.import_scene.hunyuan(filepath=str(bad))
    missing = tmp_path / "missing.obj"
    with pytest.raises(RuntimeError, match="missing.obj"):
        bpy.ops.import_scene.hunyuan(filepath=str(missing))
    # Blender is still alive and the add-on still works
    good = tmp_path / "ok.ply"
    sphere_mesh().save(good)
    assert bpy.ops.import_scene.hunyuan(filepath=str(good)) == {"FINISHED"}


def test_sidebar_and_file_handler_registered():
    assert hasattr(bpy.types, "VIEW3D_PT_hunyuan")
    assert hasattr(bpy.types, "IO_FH_hunyuan")
    assert bpy.context.scene.hunyuan.resolution > 0


@pytest.fixture(scope="module")
def svrm_views(tmp_path_factory):
    import os

    from PIL import Image
    from safetensors.numpy import load_file

    shared = Path(os.environ.get("HUNYUAN_SHARED", ROOT.parent / "shared"))
    model = shared / "fixtures" / "svrm" / "svrm-tiny"
    if not model.is_dir():
        pytest.skip(f"{model} not present")
    views = tmp_path_factory.mktemp("views")
    images = load_file(str(model / "inputs.safetensors"))["images_uint8"]
    for i, im in enumerate(images):
        Image.fromarray(im).save(views / f"view_{i}.png")
    return model, views, images


def test_reconstruct_from_views_imports_the_library_mesh(svrm_views):
    model, views, images = svrm_views
    s = bpy.context.scene.hunyuan
    s.model_dir, s.views_dir, s.resolution, s.faces = str(model), str(views), 32, 2000
    bpy.context.scene.cursor.location = (1.0, 2.0, 3.0)
    before = set(bpy.data.objects.keys())
    assert bpy.ops.hunyuan.reconstruct_views(blocking=True) == {"FINISHED"}
    new = [bpy.data.objects[k] for k in set(bpy.data.objects.keys()) - before]
    assert len(new) == 1
    obj = new[0]
    with hunyuan.Reconstructor(model) as rec:
        expected = rec.views_to_mesh(list(images), resolution=32, faces=2000)
    assert len(obj.data.vertices) == len(expected.vertices) > 100
    assert len(obj.data.polygons) == len(expected.faces)
    assert tuple(obj.location) == (1.0, 2.0, 3.0)
    assert obj.data.color_attributes.get("Col") is not None


def test_reconstruct_with_wrong_views_reports_an_error(svrm_views, tmp_path):
    model, _, _ = svrm_views
    s = bpy.context.scene.hunyuan
    s.model_dir, s.views_dir = str(model), str(tmp_path)  # an empty folder
    with pytest.raises(RuntimeError, match="7 expected"):
        bpy.ops.hunyuan.reconstruct_views(blocking=True)
    s.views_dir, s.model_dir = str(tmp_path), str(tmp_path / "no-model")
    (tmp_path / "a.png").write_bytes(b"not a png")
    with pytest.raises(RuntimeError):
        bpy.ops.hunyuan.reconstruct_views(blocking=True)
    assert not s.running


def test_generate_from_image_imports_the_library_mesh(tmp_path):
    import os

    from PIL import Image
    from safetensors.numpy import load_file

    shared = Path(os.environ.get("HUNYUAN_SHARED", ROOT.parent / "shared"))
    parts = {"mvd_lite": shared / "fixtures/mvd/mvd-lite-tiny", "svrm": shared / "fixtures/svrm/svrm-tiny",
             "u2net.onnx": shared / "fixtures/rembg/u2netp-tiny/u2netp.onnx"}
    if not all(p.exists() for p in parts.values()):
        pytest.skip("tiny fixtures missing")
    weights = tmp_path / "weights"
    weights.mkdir()
    for name, target in parts.items():
        (weights / name).symlink_to(target)
    photo = load_file(str(shared / "fixtures/rembg/u2netp-tiny/inputs.safetensors"))["rgb.image_u8"]
    Image.fromarray(photo, "RGB").save(tmp_path / "in.png")
    s = bpy.context.scene.hunyuan
    s.weights_dir, s.image_path, s.steps, s.seed, s.resolution, s.faces = str(weights), str(tmp_path / "in.png"), 2, 1, 40, 0
    before = set(bpy.data.objects.keys())
    assert bpy.ops.hunyuan.generate_from_image(blocking=True, grid_width=160, grid_height=240) == {"FINISHED"}
    new = [bpy.data.objects[k] for k in set(bpy.data.objects.keys()) - before]
    assert len(new) == 1
    with hunyuan.Generator(weights) as g:
        expected = g.image_to_3d(tmp_path / "in.png", steps=2, seed=1, resolution=40, faces=0, grid_width=160,
                                 grid_height=240)
    assert len(new[0].data.vertices) == len(expected.vertices)
    assert len(new[0].data.polygons) == len(expected.faces)
    # An image datablock gives the same mesh as its file.
    img = bpy.data.images.load(str(tmp_path / "in.png"))
    s.image = img
    before = set(bpy.data.objects.keys())
    assert bpy.ops.hunyuan.generate_from_image(blocking=True, grid_width=160, grid_height=240) == {"FINISHED"}
    new = [bpy.data.objects[k] for k in set(bpy.data.objects.keys()) - before]
    assert len(new) == 1 and len(new[0].data.polygons) == len(expected.faces)
    s.image = None
    (tmp_path / "empty").mkdir()
    s.weights_dir = str(tmp_path / "empty")
    with pytest.raises(RuntimeError, match="mvd_lite"):
        bpy.ops.hunyuan.generate_from_image(blocking=True, grid_width=160, grid_height=240)
    assert not s.running


def test_generate_from_prompt_imports_the_library_mesh(tmp_path):
    import os

    shared = Path(os.environ.get("HUNYUAN_SHARED", ROOT.parent / "shared"))
    parts = {"mvd_lite": shared / "fixtures/mvd/mvd-lite-tiny", "svrm": shared / "fixtures/svrm/svrm-tiny",
             "u2net.onnx": shared / "fixtures/rembg/u2netp-tiny/u2netp.onnx",
             "hunyuanDiT": shared / "fixtures/t2i/hunyuandit-tiny"}
    if not all(p.exists() for p in parts.values()):
        pytest.skip("tiny fixtures missing")
    weights = tmp_path / "weights"
    weights.mkdir()
    for name, target in parts.items():
        (weights / name).symlink_to(target)
    s = bpy.context.scene.hunyuan
    s.prompt_model = ""  # the weights folder, not the built-in model
    s.weights_dir, s.prompt, s.text_steps, s.image_size = str(weights), "一只红色的球 a red ball", 2, 48
    s.steps, s.seed, s.resolution, s.faces = 2, 1, 40, 0
    before = set(bpy.data.objects.keys())
    assert bpy.ops.hunyuan.generate_from_prompt(blocking=True, grid_width=160, grid_height=240) == {"FINISHED"}
    new = [bpy.data.objects[k] for k in set(bpy.data.objects.keys()) - before]
    assert len(new) == 1
    with hunyuan.Generator(weights) as g:
        expected = g.text_to_3d("一只红色的球 a red ball", seed=1, text_steps=2, width=48, height=48, steps=2,
                                resolution=40, faces=0, grid_width=160, grid_height=240)
    assert len(new[0].data.vertices) == len(expected.vertices)
    assert len(new[0].data.polygons) == len(expected.faces)
    assert new[0].data.color_attributes.get("Col") is not None
    # A folder without hunyuanDiT/ is a report naming it.
    (weights / "hunyuanDiT").unlink()
    with pytest.raises(RuntimeError, match="hunyuanDiT"):
        bpy.ops.hunyuan.generate_from_prompt(blocking=True, grid_width=160, grid_height=240)
    assert not s.running

