"""`hunyuan-cli rembg-eval` and `remove-background` on every background-removal fixture (fixtures/rembg/*, written by
the real rembg + onnxruntime + Hunyuan3D Removebg code), with the weights from the PyTorch state_dict and from the
ONNX export, compared with numpy under the fixture README's tolerances (§10): the network input exact, d0 within 5e-4,
the side logits within 1e-3, masks and rembg's cut-out within one level, and the final 512×512 image with alpha within
16, premultiplied RGB within 3 and RGB where both alphas are ≥ 64 within 4; plus the error exits."""
import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import run


def rembg_fixtures(shared):
    base = shared / "fixtures" / "rembg"
    dirs = sorted(d for d in base.iterdir() if d.is_dir() and (d / "reference.safetensors").exists()) if base.is_dir() else []
    if not dirs:
        pytest.skip(f"no background-removal fixtures under {base}")
    return dirs


def weight_files(fixture):
    return [p for p in [fixture / "model.safetensors", *sorted(fixture.glob("*.onnx"))] if p.exists()]


def check_final(ours, ref, case):
    a_o, a_r = ours[..., 3].astype(np.int32), ref[..., 3].astype(np.int32)
    assert np.abs(a_o - a_r).max() <= 16, f"{case}: final alpha"
    pre_o = ours[..., :3].astype(np.float64) * a_o[..., None] / 255
    pre_r = ref[..., :3].astype(np.float64) * a_r[..., None] / 255
    assert np.abs(pre_o - pre_r).max() <= 3, f"{case}: premultiplied RGB"
    both = (a_o >= 64) & (a_r >= 64)
    rgb = np.abs(ours[..., :3].astype(np.int32) - ref[..., :3].astype(np.int32))[both]
    assert rgb.size == 0 or rgb.max() <= 4, f"{case}: RGB where alpha >= 64"


def test_rembg_eval_matches_rembg_and_hunyuan3d(cli, shared, tmp_path):
    for fixture in rembg_fixtures(shared):
        ref = load_file(str(fixture / "reference.safetensors"))
        for weights in weight_files(fixture):
            out = tmp_path / f"{fixture.name}-{weights.suffix[1:]}.safetensors"
            run(cli, "rembg-eval", weights, "--inputs", fixture / "inputs.safetensors", "--output", out, "--threads", "2")
            ours = load_file(str(out))
            what = f"{fixture.name} ({weights.name})"
            assert np.abs(ours["rgb.input_tensor"] - ref["rgb.input_tensor"]).max() <= 1e-6, what
            d0 = float(np.abs(ours["rgb.d0"] - ref["rgb.d0"]).max())
            print(f"{what}: d0 max |diff| {d0:.2e}")
            assert d0 <= 5e-4, what
            for k in range(1, 7):
                name = f"rgb.side{k}_logit"
                assert ours[name].shape == ref[name].shape, name
                assert np.abs(ours[name] - ref[name]).max() <= 1e-3, f"{what}: {name}"
            for case in ("rgb", "rgba"):
                for name in ("mask320_u8", "mask_u8", "rembg_rgba_u8"):
                    key = f"{case}.{name}"
                    assert ours[key].shape == ref[key].shape, key
                    assert np.abs(ours[key].astype(np.int32) - ref[key].astype(np.int32)).max() <= 1, f"{what}: {key}"
                check_final(ours[f"{case}.final_rgba_u8"], ref[f"{case}.final_rgba_u8"], f"{what} {case}")


def test_remove_background_writes_png_and_refuses_to_clobber(cli, shared, tmp_path):
    from PIL import Image
    fixture = rembg_fixtures(shared)[0]
    ref = load_file(str(fixture / "reference.safetensors"))
    rgb = load_file(str(fixture / "inputs.safetensors"))["rgb.image_u8"]
    Image.fromarray(rgb, "RGB").save(tmp_path / "in.png")
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    weights = weight_files(fixture)[-1]
    run(cli, "remove-background", weights, tmp_path / "in.png", "-o", out, "--mask", mask, "--threads", "2")
    got = np.asarray(Image.open(out).convert("RGBA"))
    assert got.shape == (512, 512, 4)
    check_final(got, ref["rgb.final_rgba_u8"], "remove-background")
    m = np.asarray(Image.open(mask).convert("L"))
    assert m.shape == rgb.shape[:2] and np.abs(m.astype(np.int32) - ref["rgb.mask_u8"].astype(np.int32)).max() <= 1
    before = out.read_bytes()
    r = run(cli, "remove-background", weights, tmp_path / "in.png", "-o", out, check=False)
    assert r.returncode != 0 and out.read_bytes() == before, "an existing output was replaced without --overwrite"
    r = run(cli, "remove-background", tmp_path / "nope.onnx", tmp_path / "in.png", "-o", tmp_path / "x.png", check=False)
    assert r.returncode != 0 and "nope.onnx" in r.stderr and not (tmp_path / "x.png").exists()
    (tmp_path / "bad.onnx").write_bytes(weights.read_bytes()[:1000])
    r = run(cli, "remove-background", tmp_path / "bad.onnx", tmp_path / "in.png", "-o", tmp_path / "x.png", check=False)
    assert r.returncode != 0 and "bad.onnx" in r.stderr and not (tmp_path / "x.png").exists()
