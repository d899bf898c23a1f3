"""`hunyuan-cli svrm-eval` on every SVRM fixture: the outputs it writes (same names and layouts as the
official code's reference.safetensors) compared with numpy, plus marching cubes on our SDF grid with
PyMCubes (called as the official code does) against the reference's PyMCubes vertex set, and the error exits."""
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file


def svrm_fixtures(shared):
    base = shared / "fixtures" / "svrm"
    dirs = sorted(d for d in base.iterdir() if (d / "model.safetensors").exists() and (d / "reference.safetensors").exists()) \
        if base.is_dir() else []
    if not dirs:
        pytest.skip(f"no SVRM fixtures under {base}")
    return dirs


def run_eval(cli, fixture, tmp_path, grid):
    ref = load_file(str(fixture / "reference.safetensors"))
    points = tmp_path / "points.npy"
    np.save(points, ref["points"].astype(np.float32))
    out = tmp_path / "out.safetensors"
    subprocess.run([str(cli), "svrm-eval", str(fixture), "--inputs", str(fixture / "inputs.safetensors"),
                    "--points", str(points), "--grid", str(grid), "--output", str(out), "--intermediates", "--normals",
                    "--threads", "2"], check=True, capture_output=True)
    return ref, load_file(str(out))


def test_svrm_eval_matches_reference(cli, shared, tmp_path):
    for fixture in svrm_fixtures(shared):
        ref = load_file(str(fixture / "reference.safetensors"))
        ours_ref, ours = run_eval(cli, fixture, tmp_path, ref["sdf_grid"].shape[0])
        for name in ["encoder_tokens", "triplane", "sdf", "rgb", "sdf_grid"]:
            assert name in ours, name
        tol = {"sdf_grad": 2e-3, "normal": 5e-4}
        for name, value in ours.items():
            if name not in ref or name == "points":
                continue
            assert value.shape == ref[name].shape, name
            err = float(np.abs(value.astype(np.float64) - ref[name]).max())
            assert err <= tol.get(name, 1e-4), f"{fixture.name}: {name} max abs error {err}"


def test_svrm_grid_marching_cubes_vertex_set(cli, shared, tmp_path):
    mcubes = pytest.importorskip("mcubes")
    for fixture in svrm_fixtures(shared):
        ref, ours = run_eval(cli, fixture, tmp_path, load_file(str(fixture / "reference.safetensors"))["sdf_grid"].shape[0])
        if "mc_vertices" not in ref:
            continue
        g = ours["sdf_grid"].shape[0]
        verts, _ = mcubes.marching_cubes(-ours["sdf_grid"].astype(np.float64), 0.0)  # as svrm.py:181
        verts = verts / (g - 1) * 1.2 - 0.6
        theirs = ref["mc_vertices"].astype(np.float64)
        assert len(verts) == len(theirs)
        # Match as sets: every reference vertex has one of ours within 1e-4 (a vertex moves by
        # sdf noise / |Δsdf along its edge| · cell, so fp32 noise alone reaches ~1e-5 on this grid).
        cells = {}
        for i, v in enumerate(verts):
            cells.setdefault(tuple(np.floor(v * 1e3).astype(int)), []).append(i)
        used = np.zeros(len(verts), bool)
        worst = 0.0
        for v in theirs:
            k = np.floor(v * 1e3).astype(int)
            best, bd = -1, np.inf
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for dz in (-1, 0, 1):
                        for i in cells.get((k[0] + dx, k[1] + dy, k[2] + dz), []):
                            d = np.abs(verts[i] - v).max()
                            if not used[i] and d < bd:
                                best, bd = i, d
            assert best >= 0 and bd <= 1e-4, f"reference vertex {v} unmatched (nearest {bd})"
            used[best] = True
            worst = max(worst, bd)


def test_svrm_eval_errors(cli, shared, tmp_path):
    fixture = svrm_fixtures(shared)[0]
    inputs = load_file(str(fixture / "inputs.safetensors"))
    bad = tmp_path / "bad_inputs.safetensors"
    save_file({"images": inputs["images"][:6].copy(), "cameras": inputs["cameras"][:6].copy()}, str(bad))
    r = subprocess.run([str(cli), "svrm-eval", str(fixture), "--inputs", str(bad), "--output", str(tmp_path / "o.safetensors")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "images" in r.stderr
    r = subprocess.run([str(cli), "svrm-eval", str(tmp_path / "missing"), "--inputs", str(bad), "--output",
                        str(tmp_path / "o.safetensors")], capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.startswith("error:")


def test_reconstruct_png_views_equal_raw_views(cli, shared, tmp_path):
    """PNG views written by Pillow (RGB, RGBA with opaque alpha, 16-bit grey-free paths aside) decode to
    the same pixels as the raw images_uint8 tensor: both runs give byte-identical meshes."""
    Image = pytest.importorskip("PIL.Image")
    fixture = svrm_fixtures(shared)[0]
    u8 = load_file(str(fixture / "inputs.safetensors"))["images_uint8"]
    paths = []
    for i, im in enumerate(u8):
        p = tmp_path / f"v{i}.png"
        if i == 2:  # RGBA with full alpha: composited over white = unchanged
            rgba = np.concatenate([im, np.full(im.shape[:2] + (1,), 255, np.uint8)], axis=2)
            Image.fromarray(rgba, "RGBA").save(p)
        else:
            Image.fromarray(im, "RGB").save(p, optimize=(i % 2 == 0))
        paths.append(str(p))
    a, b = tmp_path / "a.ply", tmp_path / "b.ply"
    common = ["--resolution", "32", "--faces", "0", "--threads", "2"]
    subprocess.run([str(cli), "reconstruct", str(fixture), "--views", *paths[:6], "--condition", paths[6], "-o", str(a), *common],
                   check=True, capture_output=True)
    subprocess.run([str(cli), "reconstruct", str(fixture), "--views-u8", str(fixture / "inputs.safetensors"), "-o", str(b), *common],
                   check=True, capture_output=True)
    assert a.read_bytes() == b.read_bytes()
    trimesh = pytest.importorskip("trimesh")
    mesh = trimesh.load(str(a), process=False)
    assert len(mesh.faces) > 100 and mesh.visual.vertex_colors.shape[0] == len(mesh.vertices)
    # an existing output is refused before any work (and left as it was) unless --overwrite
    before = a.read_bytes()
    r = subprocess.run([str(cli), "reconstruct", str(fixture), "--views-u8", str(fixture / "inputs.safetensors"), "-o", str(a),
                        "--resolution", "24"], capture_output=True, text=True)
    assert r.returncode != 0 and "exists" in r.stderr and a.read_bytes() == before
    r = subprocess.run([str(cli), "reconstruct", str(fixture), "--views-u8", str(fixture / "inputs.safetensors"), "-o", str(a),
                        "--resolution", "24", "--overwrite"], capture_output=True, text=True)
    assert r.returncode == 0 and a.read_bytes() != before and "encode" in r.stderr
