"""`hunyuan-cli t2i-eval` and `text-to-image` on every text-to-image fixture (fixtures/t2i/*): diffusers'
HunyuanDiT PAG pipeline as Hunyuan3D-1.0 calls it, recorded with its random draws, compared with numpy under the
issue's measure (max |ours − ref| / max(1, max |ref|) ≤ 1e-4; token ids identical; the image within one level),
plus prompts and folders a user could get wrong."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import run

FLOATS = ["bert_hidden", "t5_hidden", "rope_cos", "rope_sin", "decoded"]


def t2i_fixtures(shared):
    base = shared / "fixtures" / "t2i"
    dirs = sorted(d for d in base.iterdir() if (d / "model_index.json").exists() and (d / "reference.safetensors").exists()) \
        if base.is_dir() else []
    if not dirs:
        pytest.skip(f"no text-to-image fixtures under {base}")
    return dirs


def scaled_error(ours, ref):
    ref = ref.astype(np.float64)
    return float(np.abs(ours.astype(np.float64) - ref).max() / max(1.0, float(np.abs(ref).max())))


def eval_args(fixture, out):
    meta = json.loads((fixture / "fixture_meta.json").read_text())
    return ["t2i-eval", fixture, "--prompt", meta["prompt"], "--height", meta["height"], "--width", meta["width"],
            "--steps", meta["steps"], "--inputs", fixture / "inputs.safetensors", "--output", out, "--threads", "2"], meta


def test_t2i_eval_matches_the_official_pipeline(cli, shared, tmp_path):
    for fixture in t2i_fixtures(shared):
        out = tmp_path / f"{fixture.name}.safetensors"
        args, meta = eval_args(fixture, out)
        run(cli, *args)
        ours, ref, inp = load_file(str(out)), load_file(str(fixture / "reference.safetensors")), \
            load_file(str(fixture / "inputs.safetensors"))
        for name in ("bert_input_ids", "t5_input_ids"):
            assert np.array_equal(ours[name], inp[name]), f"{fixture.name}: {name} differ"
        steps = meta["steps"]
        names = FLOATS + [f"step{i}_{k}" for i in range(steps) for k in ("dit_out", "guided", "latents_out")]
        for name in names:
            assert name in ours and name in ref, name
            assert ours[name].shape == ref[name].shape, (name, ours[name].shape, ref[name].shape)
            err = scaled_error(ours[name], ref[name])
            print(f"{fixture.name} {name}: {err:.2e}")
            assert err <= 1e-4, f"{fixture.name}: {name} scaled error {err}"
        diff = np.abs(ours["image_u8"].astype(np.int32) - ref["image_u8"].astype(np.int32))
        assert diff.max() <= 1, f"{fixture.name}: image differs by {diff.max()} levels"
        print(f"{fixture.name} image_u8: {np.count_nonzero(diff)} of {diff.size} values off by one")


def test_text_to_image_writes_a_png_and_refuses_to_clobber(cli, shared, tmp_path):
    fixture = t2i_fixtures(shared)[0]
    from PIL import Image
    out = tmp_path / "cat.png"
    base = ["text-to-image", fixture, "一只戴着红色围巾的可爱小猫", "--steps", "2", "--height", "64", "--width", "48",
            "--threads", "2"]
    run(cli, *base, "-o", out)
    im = np.asarray(Image.open(out))
    assert im.shape == (64, 48, 3)
    again = run(cli, *base, "-o", out, check=False)
    assert again.returncode != 0 and "exists" in again.stderr, again.stderr
    # the same seed gives the same image; another seed another one
    out2, out3 = tmp_path / "cat2.png", tmp_path / "cat3.png"
    run(cli, *base, "-o", out2)
    run(cli, *base, "--seed", "5", "-o", out3)
    assert np.array_equal(im, np.asarray(Image.open(out2)))
    assert not np.array_equal(im, np.asarray(Image.open(out3)))
    # a release folder: hunyuanDiT/ inside the weights folder
    weights = tmp_path / "weights"
    weights.mkdir()
    os.symlink(fixture, weights / "hunyuanDiT")
    run(cli, *(["text-to-image", weights] + base[2:]), "-o", tmp_path / "w.png")
    assert np.array_equal(im, np.asarray(Image.open(tmp_path / "w.png")))


@pytest.mark.parametrize("prompt", ["", "x" * 10_000, "mixed 中文 English, émoji 🐱, ３D\tmodel\n"])
def test_any_prompt_gives_an_image(cli, shared, tmp_path, prompt):
    fixture = t2i_fixtures(shared)[0]
    out = tmp_path / "p.png"
    run(cli, "text-to-image", fixture, prompt, "--steps", "1", "--height", "32", "--width", "32", "-o", out)
    assert out.exists()


def test_invalid_utf8_prompt_is_an_error(cli, shared, tmp_path):
    fixture = t2i_fixtures(shared)[0]
    r = subprocess.run([str(cli).encode(), b"text-to-image", str(fixture).encode(), b"bad \xff\xfe utf8",
                        b"--steps", b"1", b"--height", b"32", b"--width", b"32", b"-o", str(tmp_path / "u.png").encode()],
                       capture_output=True)
    assert r.returncode != 0 and b"UTF-8" in r.stderr, r.stderr
    assert not (tmp_path / "u.png").exists()


def test_broken_folders_are_named_errors(cli, shared, tmp_path):
    fixture = t2i_fixtures(shared)[0]
    cases = {
        "no spiece.model": lambda d: (d / "tokenizer_2" / "spiece.model").unlink(),
        "corrupt spiece.model": lambda d: (d / "tokenizer_2" / "spiece.model").write_bytes(b"\x0a\xff\xff\xff\x0f garbage"),
        "no vocab.txt": lambda d: (d / "tokenizer" / "vocab.txt").unlink(),
        "no transformer": lambda d: shutil.rmtree(d / "transformer"),
        "truncated weights": lambda d: (d / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(
            (fixture / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()[:5000]),
    }
    for what, breakit in cases.items():
        d = tmp_path / what.replace(" ", "_")
        shutil.copytree(fixture, d)
        breakit(d)
        out = tmp_path / "x.png"
        r = run(cli, "text-to-image", d, "a cat", "--steps", "1", "--height", "32", "--width", "32", "-o", out, check=False)
        assert r.returncode != 0, what
        assert "error" in r.stderr.lower() and len(r.stderr.strip()) > 10, (what, r.stderr)
        assert "Fatal" not in r.stderr and "Trace/breakpoint" not in r.stderr, (what, r.stderr)
        assert not out.exists(), what
        print(f"{what}: {r.stderr.strip()}")
    r = run(cli, "text-to-image", fixture, "a cat", "--steps", "0", "-o", tmp_path / "y.png", check=False)
    assert r.returncode != 0 and "steps" in r.stderr, r.stderr
    r = run(cli, "text-to-image", fixture, "a cat", "--height", "8", "-o", tmp_path / "y.png", check=False)
    assert r.returncode != 0 and "16" in r.stderr, r.stderr
