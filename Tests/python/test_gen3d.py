"""hunyuan.Generator on a weights folder laid out like the release, made of the tiny fixtures: image → mesh gives
the mesh `hunyuan-cli image-to-3d` writes for the same image and settings (same library, other host), an array,
a file and a PIL image give the same mesh, the background removal alone matches `remove-background`, progress
moves forward, a cancel raises AbortedError and leaves the generator usable, and a missing stage is named."""
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

import hunyuan

RUN = dict(steps=2, seed=5, resolution=40, faces=0, grid_width=160, grid_height=240)


@pytest.fixture(scope="module")
def weights(shared, tmp_path_factory):
    parts = {"mvd_lite": shared / "fixtures/mvd/mvd-lite-tiny", "svrm": shared / "fixtures/svrm/svrm-tiny",
             "u2net.onnx": shared / "fixtures/rembg/u2netp-tiny/u2netp.onnx"}
    if not all(p.exists() for p in parts.values()):
        pytest.skip("tiny fixtures missing")
    root = tmp_path_factory.mktemp("weights")
    for name, target in parts.items():
        (root / name).symlink_to(target)
    return root


@pytest.fixture(scope="module")
def photo(shared):
    return load_file(str(shared / "fixtures/rembg/u2netp-tiny/inputs.safetensors"))["rgb.image_u8"]


def test_image_to_3d_matches_the_cli(weights, photo, cli, tmp_path):
    from PIL import Image
    import trimesh
    Image.fromarray(photo, "RGB").save(tmp_path / "in.png")
    fractions = []
    with hunyuan.Generator(weights, n_threads=2) as g:
        mesh = g.image_to_3d(photo, progress=lambda f: fractions.append(f) or True, **RUN)
        assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
        from_file = g.image_to_3d(tmp_path / "in.png", **RUN)
        from_pil = g.image_to_3d(Image.open(tmp_path / "in.png"), **RUN)
        for other in (from_file, from_pil):
            assert np.array_equal(mesh.faces, other.faces) and np.array_equal(mesh.vertices, other.vertices)
        cut = g.remove_background(photo)
        assert cut.shape == (512, 512, 4) and cut.dtype == np.uint8
    subprocess.run([str(cli), "image-to-3d", str(weights), str(tmp_path / "in.png"), "-o", str(tmp_path / "m.ply"),
                    "--steps", "2", "--seed", "5", "--resolution", "40", "--faces", "0", "--grid-width", "160",
                    "--grid-height", "240", "--threads", "2"], check=True, capture_output=True)
    ref = trimesh.load(tmp_path / "m.ply", process=False)
    assert np.array_equal(np.asarray(ref.faces), mesh.faces)
    assert np.allclose(np.asarray(ref.vertices), mesh.vertices, atol=1e-6)
    subprocess.run([str(cli), "remove-background", str(weights / "u2net.onnx"), str(tmp_path / "in.png"), "-o",
                    str(tmp_path / "cut.png")], check=True, capture_output=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cut.png").convert("RGBA")), cut)


def test_cancel_and_errors(weights, photo, tmp_path):
    with hunyuan.Generator(weights, n_threads=2) as g:
        for stop_after in (1, 3, 6):
            calls = []
            with pytest.raises(hunyuan.AbortedError):
                g.image_to_3d(photo, progress=lambda f: calls.append(f) or len(calls) < stop_after, **RUN)
        assert len(g.image_to_3d(photo, **RUN).faces) >= 0
        with pytest.raises(ValueError):
            g.image_to_3d(np.zeros((4, 4), np.float32))
        with pytest.raises(hunyuan.InvalidArgumentError):
            g.image_to_3d(photo, steps=0)
        with pytest.raises(hunyuan.InvalidArgumentError, match="empty"):
            g.remove_background(np.zeros((8, 8, 4), np.uint8), keep_alpha=True)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "mvd_lite").symlink_to(weights / "mvd_lite")
    with pytest.raises(hunyuan.IOError, match="svrm"):
        hunyuan.Generator(tmp_path / "w")


TEXT = dict(steps=2, seed=3, width=48, height=64)


@pytest.fixture(scope="module")
def text_weights(weights, shared, tmp_path_factory):
    t2i = shared / "fixtures/t2i/hunyuandit-tiny"
    if not t2i.exists():
        pytest.skip("t2i fixture missing")
    root = tmp_path_factory.mktemp("text-weights")
    for p in weights.iterdir():
        (root / p.name).symlink_to(p.resolve())
    (root / "hunyuanDiT").symlink_to(t2i)
    return root


def test_text_to_image_and_3d_match_the_cli(text_weights, cli, tmp_path):
    """text_to_image equals `hunyuan-cli text-to-image` (same seed and settings), text_to_3d equals
    `hunyuan-cli text-to-3d`; progress moves forward to 1; another seed, another picture."""
    from PIL import Image
    import trimesh
    prompt = "一只戴着红色围巾的可爱小猫 a cat"
    fractions = []
    with hunyuan.Generator(text_weights, n_threads=2) as g:
        pic = g.text_to_image(prompt, progress=lambda f: fractions.append(f) or True, **TEXT)
        assert pic.shape == (64, 48, 3) and pic.dtype == np.uint8
        assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
        assert not np.array_equal(pic, g.text_to_image(prompt, **dict(TEXT, seed=4)))
        mesh = g.text_to_3d(prompt, seed=3, text_steps=2, width=48, height=48, **{k: v for k, v in RUN.items() if k != "seed"})
        assert len(mesh.faces) > 0
    subprocess.run([str(cli), "text-to-image", str(text_weights), prompt, "-o", str(tmp_path / "t.png"), "--steps", "2",
                    "--seed", "3", "--width", "48", "--height", "64", "--threads", "2"], check=True, capture_output=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "t.png")), pic)
    subprocess.run([str(cli), "text-to-3d", str(text_weights), prompt, "-o", str(tmp_path / "m.ply"), "--seed", "3",
                    "--text-steps", "2", "--image-size", "48", "--steps", "2", "--resolution", "40", "--faces", "0",
                    "--grid-width", "160", "--grid-height", "240", "--threads", "2", "--image", str(tmp_path / "p.png")],
                   check=True, capture_output=True)
    assert np.asarray(Image.open(tmp_path / "p.png")).shape == (48, 48, 3)
    ref = trimesh.load(tmp_path / "m.ply", process=False)
    assert np.array_equal(np.asarray(ref.faces), mesh.faces)
    assert np.allclose(np.asarray(ref.vertices), mesh.vertices, atol=1e-6)


def test_text_cancel_and_errors(text_weights, weights):
    with hunyuan.Generator(text_weights, n_threads=2) as g:
        with pytest.raises(hunyuan.AbortedError):
            g.text_to_image("a cat", progress=lambda f: f < 0.3, **TEXT)
        assert g.text_to_image("", **TEXT).shape == (64, 48, 3)  # empty prompt: a picture; generator usable
        with pytest.raises(hunyuan.InvalidArgumentError):
            g.text_to_image("a cat", **dict(TEXT, width=40))
        with pytest.raises(ValueError):
            g.text_to_image("a cat", compute="fp16", **TEXT)
    with hunyuan.Generator(weights, n_threads=2) as g:  # no hunyuanDiT/
        with pytest.raises(hunyuan.IOError, match="hunyuanDiT"):
            g.text_to_image("a cat", **TEXT)
