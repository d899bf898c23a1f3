"""`hunyuan-cli mvd-eval` and `views` on every multi-view diffusion fixture (fixtures/mvd/*): the official
Hunyuan3d_MVD_Lite_Pipeline's intermediates, recorded with its random draws, compared with numpy under the
issue's measure (max |ours − ref| / max(1, max |ref|) ≤ 1e-4; views within one level), plus the error exits."""
import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import run

NAMES = ["prompt_embeds", "cond_lat", "sigmas", "timesteps", "latents_T", "decode_in", "decoded"]


def mvd_fixtures(shared):
    base = shared / "fixtures" / "mvd"
    dirs = sorted(d for d in base.iterdir() if (d / "model_index.json").exists() and (d / "reference.safetensors").exists()) \
        if base.is_dir() else []
    if not dirs:
        pytest.skip(f"no multi-view diffusion fixtures under {base}")
    return dirs


def scaled_error(ours, ref):
    ref = ref.astype(np.float64)
    return float(np.abs(ours.astype(np.float64) - ref).max() / max(1.0, float(np.abs(ref).max())))


def test_mvd_eval_matches_the_official_pipeline(cli, shared, tmp_path):
    for fixture in mvd_fixtures(shared):
        out = tmp_path / f"{fixture.name}.safetensors"
        run(cli, "mvd-eval", fixture, "--inputs", fixture / "inputs.safetensors", "--output", out, "--threads", "2")
        ours, ref = load_file(str(out)), load_file(str(fixture / "reference.safetensors"))
        steps = json.loads((fixture / "fixture_meta.json").read_text())["steps"]
        names = NAMES + [f"step{i}_{k}" for i in range(steps) for k in ("unet_out", "guided", "latents")]
        for name in names:
            assert name in ours and name in ref, name
            assert ours[name].shape == ref[name].shape, (name, ours[name].shape, ref[name].shape)
            err = scaled_error(ours[name], ref[name])
            print(f"{fixture.name} {name}: {err:.2e}")
            assert err <= 1e-4, f"{fixture.name}: {name} scaled error {err}"
        diff = np.abs(ours["views_u8"].astype(np.int32) - ref["views_u8"].astype(np.int32))
        assert diff.max() <= 1, f"{fixture.name}: views differ by {diff.max()} levels"
        print(f"{fixture.name} views_u8: {np.count_nonzero(diff)} of {diff.size} values off by one")


def test_views_command_writes_six_views_and_refuses_to_clobber(cli, shared, tmp_path):
    fixture = mvd_fixtures(shared)[0]
    meta = json.loads((fixture / "fixture_meta.json").read_text())
    h, w = meta["image_hw"]
    from PIL import Image
    rgba = load_file(str(fixture / "inputs.safetensors"))["rgba_u8"]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    out = tmp_path / "views"
    args = ["views", fixture, tmp_path / "in.png", "-o", out, "--steps", "2", "--seed", "7", "--grid", tmp_path / "grid.png",
            "--height", h, "--width", w, "--threads", "2"]
    run(cli, *args)
    views = [np.asarray(Image.open(out / f"view_{i}.png")) for i in range(6)]
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape[:2] == (h, w)
    for i, v in enumerate(views):   # the views are the grid's 3 × 2 tiles, row-major
        r, c = divmod(i, 2)
        assert np.array_equal(v[..., :3], grid[r * h // 3:(r + 1) * h // 3, c * w // 2:(c + 1) * w // 2, :3])
    # same seed, same views; existing files are not replaced without --overwrite
    before = (out / "view_0.png").read_bytes()
    r = run(cli, *args, check=False)
    assert r.returncode != 0 and "exists" in r.stderr
    run(cli, *args, "--overwrite")
    assert (out / "view_0.png").read_bytes() == before


def test_mvd_errors_name_the_component(cli, shared, tmp_path):
    fixture = mvd_fixtures(shared)[0]
    broken = tmp_path / "broken"
    shutil.copytree(fixture, broken, ignore=shutil.ignore_patterns("*.safetensors"))
    shutil.copy(fixture / "inputs.safetensors", broken / "inputs.safetensors")
    for comp in ("vae", "text_encoder", "vision_encoder"):
        src = next((fixture / comp).glob("*.safetensors"))
        shutil.copy(src, broken / comp / src.name)
    out = tmp_path / "o.safetensors"
    r = run(cli, "mvd-eval", broken, "--inputs", broken / "inputs.safetensors", "--output", out, check=False)
    assert r.returncode != 0 and "unet" in r.stderr, r.stderr
    assert not out.exists()
    # a truncated UNet file
    src = next((fixture / "unet").glob("*.safetensors"))
    (broken / "unet" / src.name).write_bytes(src.read_bytes()[:1000])
    r = run(cli, "mvd-eval", broken, "--inputs", broken / "inputs.safetensors", "--output", out, check=False)
    assert r.returncode != 0 and "unet" in r.stderr, r.stderr
    assert not out.exists()
    # a missing component folder
    shutil.rmtree(broken / "vision_encoder")
    r = run(cli, "views", broken, tmp_path / "nothing.png", "-o", tmp_path / "v", check=False)
    assert r.returncode != 0
    # a grid size the model cannot make
    r = run(cli, "mvd-eval", fixture, "--inputs", fixture / "inputs.safetensors", "--output", out, "--steps", "0", check=False)
    assert r.returncode != 0 and "steps" in r.stderr
