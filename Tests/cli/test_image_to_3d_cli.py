"""`hunyuan-cli image-to-3d` on a weights folder laid out like the release, made of the tiny fixtures
(mvd_lite/ = fixtures/mvd/mvd-lite-tiny, svrm/ = fixtures/svrm/svrm-tiny, u2net.onnx =
fixtures/rembg/u2netp-tiny/u2netp.onnx): the run must equal main.py's composition of the stages, each of
which the other CLI tests check against its fixture — remove-background's 512² cut-out, `views` on that
cut-out with the same seed, and `reconstruct` on those views with the condition image last — and name what
a folder lacks."""
import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import run


def weights_folder(shared, root):
    parts = {"mvd_lite": shared / "fixtures/mvd/mvd-lite-tiny", "svrm": shared / "fixtures/svrm/svrm-tiny",
             "u2net.onnx": shared / "fixtures/rembg/u2netp-tiny/u2netp.onnx"}
    for p in parts.values():
        if not p.exists():
            pytest.skip(f"fixture {p} is missing")
    root.mkdir()
    for name, target in parts.items():
        (root / name).symlink_to(target)
    return root


SIZES = ["--steps", "2", "--seed", "7"]


def test_image_to_3d_equals_the_stages_in_sequence(cli, shared, tmp_path):
    from PIL import Image
    import trimesh
    weights = weights_folder(shared, tmp_path / "weights")
    rgb = load_file(str(shared / "fixtures/rembg/u2netp-tiny/inputs.safetensors"))["rgb.image_u8"]
    Image.fromarray(rgb, "RGB").save(tmp_path / "in.png")
    inter = tmp_path / "inter"
    mesh = tmp_path / "mesh.ply"
    r = run(cli, "image-to-3d", weights, tmp_path / "in.png", "-o", mesh, *SIZES, "--grid-height", "240", "--grid-width", "160", "--resolution", "48",
            "--faces", "0", "--save-intermediates", inter, "--threads", "2")
    assert "views" in r.stderr and "reconstruct" in r.stderr, r.stderr

    # Stage 2: the background removal alone.
    run(cli, "remove-background", weights / "u2net.onnx", tmp_path / "in.png", "-o", tmp_path / "cut.png")
    cut = np.asarray(Image.open(tmp_path / "cut.png").convert("RGBA"))
    assert np.array_equal(cut, np.asarray(Image.open(inter / "cutout.png").convert("RGBA")))
    # Stage 3: the views of that cut-out, same seed and sizes.
    run(cli, "views", weights / "mvd_lite", tmp_path / "cut.png", "-o", tmp_path / "views", *SIZES,
        "--height", "240", "--width", "160")
    for i in range(6):
        a = np.asarray(Image.open(tmp_path / "views" / f"view_{i}.png").convert("RGB"))
        b = np.asarray(Image.open(inter / f"view_{i}.png").convert("RGB"))
        assert np.array_equal(a, b), f"view {i}"
    # The condition image: the cut-out pasted on white after the white-out (MVDPreprocess, fixture-checked).
    cond = np.asarray(Image.open(inter / "condition.png").convert("RGB"))
    assert cond.shape == (512, 512, 3)
    # Stage 4: the reconstruction of those views, condition last.
    views = [inter / f"view_{i}.png" for i in range(6)]
    run(cli, "reconstruct", weights / "svrm", "--views", *views, "--condition", inter / "condition.png",
        "-o", tmp_path / "mesh2.ply", "--resolution", "48", "--faces", "0")
    a = trimesh.load(mesh, process=False)
    b = trimesh.load(tmp_path / "mesh2.ply", process=False)
    assert np.array_equal(np.asarray(a.faces), np.asarray(b.faces))
    assert np.allclose(np.asarray(a.vertices), np.asarray(b.vertices), atol=1e-6)


def test_image_to_3d_names_what_is_missing(cli, shared, tmp_path):
    weights = weights_folder(shared, tmp_path / "weights")
    (weights / "svrm").unlink()
    r = run(cli, "image-to-3d", weights, tmp_path / "in.png", "-o", tmp_path / "m.glb", check=False)
    assert r.returncode != 0 and not (tmp_path / "m.glb").exists()
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    r = run(cli, "image-to-3d", weights, tmp_path / "in.png", "-o", tmp_path / "m.glb", check=False)
    assert r.returncode != 0 and "svrm/svrm.safetensors" in r.stderr and not (tmp_path / "m.glb").exists()
