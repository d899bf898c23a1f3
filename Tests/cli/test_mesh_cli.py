"""Mesh engine tests against independent references (scikit-image, trimesh, pygltflib, scipy).

Drives `hunyuan-cli mesh / mesh-info / mesh-convert / preview` (HUNYUAN_CLI). Fields are analytic;
grids are float32 [X, Y, Z] in C order, voxel-index coordinates, level 0, inside below the level.
"""
import json
import math
import os
import struct
import subprocess

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree
from skimage import measure

from conftest import CLI


def run(*args, ok=True):
    r = subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr}"
    return r


def coords(n):
    x = np.arange(n, dtype=np.float64)
    return np.meshgrid(x, x, x, indexing="ij")


# ---- analytic fields: (grid, analytic volume or None) ------------------------------------------

def sphere(n):
    X, Y, Z = coords(n)
    c = np.array([0.5 * n - 0.37, 0.5 * n + 0.21, 0.5 * n - 0.13])
    r = 0.31 * n + 0.17
    g = np.sqrt((X - c[0]) ** 2 + (Y - c[1]) ** 2 + (Z - c[2]) ** 2) - r
    return g.astype(np.float32), 4 / 3 * math.pi * r ** 3


def torus(n):
    X, Y, Z = coords(n)
    c = 0.5 * (n - 1) + 0.23
    R, r = 0.27 * n, 0.11 * n + 0.07
    q = np.sqrt((X - c) ** 2 + (Y - c) ** 2) - R
    g = np.sqrt(q ** 2 + (Z - c - 0.11) ** 2) - r
    return g.astype(np.float32), 2 * math.pi ** 2 * R * r ** 2


def box(n):
    X, Y, Z = coords(n)
    c = np.array([0.5 * n + 0.31, 0.5 * n - 0.27, 0.5 * n + 0.43])
    h = np.array([0.31 * n + 0.29, 0.22 * n + 0.41, 0.27 * n + 0.13])
    q = np.stack([np.abs(X - c[0]) - h[0], np.abs(Y - c[1]) - h[1], np.abs(Z - c[2]) - h[2]])
    g = np.linalg.norm(np.maximum(q, 0), axis=0) + np.minimum(q.max(axis=0), 0)
    return g.astype(np.float32), float(np.prod(2 * h))


def two_spheres(n, gap=0.9):
    X, Y, Z = coords(n)
    r = 0.22 * n
    cy, cz = 0.5 * n + 0.17, 0.5 * n - 0.29
    cx1, cx2 = 0.5 * n - r - gap / 2 + 0.13, 0.5 * n + r + gap / 2 + 0.13
    d1 = np.sqrt((X - cx1) ** 2 + (Y - cy) ** 2 + (Z - cz) ** 2) - r
    d2 = np.sqrt((X - cx2) ** 2 + (Y - cy) ** 2 + (Z - cz) ** 2) - r
    return np.minimum(d1, d2).astype(np.float32), 2 * 4 / 3 * math.pi * r ** 3


def gyroid(n):
    X, Y, Z = coords(n)
    k = 2 * math.pi / (n / 3.3)
    c = 0.5 * (n - 1) + 0.17
    gy = np.sin(k * X) * np.cos(k * Y) + np.sin(k * Y) * np.cos(k * Z) + np.sin(k * Z) * np.cos(k * X)
    ball = np.sqrt((X - c) ** 2 + (Y - c) ** 2 + (Z - c) ** 2) - 0.4 * n
    return np.maximum(gy / k, ball).astype(np.float32), None


FIELDS = [("sphere", sphere, 96), ("torus", torus, 96), ("box", box, 128),
          ("two_spheres", two_spheres, 96), ("gyroid", gyroid, 128), ("sphere64", sphere, 64),
          ("torus256", torus, 256)]


def load_mesh(path):
    """trimesh's view of a file we wrote: the single mesh (a GLB scene's only geometry)."""
    s = trimesh.load(str(path), process=False)
    if isinstance(s, trimesh.Scene):
        assert len(s.geometry) == 1
        return next(iter(s.geometry.values()))
    return s


def extract(tmp_path, g, name, *extra, fmt="ply"):
    p = tmp_path / f"{name}.npy"
    np.save(p, g)
    out = tmp_path / f"{name}.{fmt}"
    run("mesh", p, "--level", 0, "-o", out, *extra)
    return load_mesh(out), out


def linear_zero_error(v, g):
    """Max distance (grid units) of each vertex from the zero of the linear interpolation along the
    grid edge it lies on; also checks that edge really crosses the level."""
    v = v.astype(np.float64)
    frac = np.abs(v - np.round(v)) > 0
    on_point = frac.sum(axis=1) == 0
    # A crossing within float32 rounding of a sample lands exactly on it: check it against the
    # edges around that sample.
    for p in np.round(v[on_point]).astype(np.int64):
        best = np.inf
        for ax in range(3):
            for s in (-1, 1):
                q = p.copy(); q[ax] += s
                if not (0 <= q[ax] < g.shape[ax]):
                    continue
                a0, a1 = float(g[tuple(p)]), float(g[tuple(q)])
                if (a0 < 0) != (a1 < 0):
                    best = min(best, abs(a0 / (a0 - a1)))
        assert best < 1e-5, f"vertex at sample {p} is not at a crossing"
    v, frac = v[~on_point], frac[~on_point]
    assert (frac.sum(axis=1) == 1).all(), "every vertex must lie on exactly one grid edge"
    axis = np.argmax(frac, axis=1)
    lo = np.floor(v).astype(np.int64)
    hi = lo.copy()
    hi[np.arange(len(v)), axis] += 1
    a0 = g[lo[:, 0], lo[:, 1], lo[:, 2]].astype(np.float64)
    a1 = g[hi[:, 0], hi[:, 1], hi[:, 2]].astype(np.float64)
    assert ((a0 < 0) != (a1 < 0)).all(), "a vertex lies on an edge that does not cross the level"
    t = a0 / (a0 - a1)
    exact = lo[np.arange(len(v)), axis] + t
    return np.abs(v[np.arange(len(v)), axis] - exact).max()


@pytest.mark.parametrize("name,field,n", FIELDS, ids=[f[0] for f in FIELDS])
def test_iso_surface_matches_references(tmp_path, name, field, n):
    g, analytic = field(n)
    m, _ = extract(tmp_path, g, name)
    assert len(m.faces) > 0
    assert m.is_watertight, f"{name}: not watertight"
    assert m.is_winding_consistent, f"{name}: winding not consistent"
    assert m.volume > 0, f"{name}: faces must wind counter-clockwise seen from outside (volume {m.volume})"
    v, f, _, _ = measure.marching_cubes(g, 0.0)
    ref = trimesh.Trimesh(v, f, process=False)
    ref_vol = abs(ref.volume)
    assert abs(m.volume - ref_vol) / ref_vol < 0.005, f"{name}: volume {m.volume} vs scikit-image {ref_vol}"
    if analytic is not None:
        assert abs(m.volume - analytic) / analytic < 0.005, f"{name}: volume {m.volume} vs analytic {analytic}"
    assert m.euler_number == ref.euler_number, f"{name}: Euler {m.euler_number} vs scikit-image {ref.euler_number}"
    # Interior vertices are on the linearly interpolated zero (cells may add a centroid vertex only
    # in rare ambiguous configurations, none of which these smooth fields have).
    assert linear_zero_error(np.asarray(m.vertices), g) < 1e-5


def test_inside_above_and_bounds(tmp_path):
    g, analytic = sphere(64)
    m, _ = extract(tmp_path, -g, "dens", "--inside-above")
    assert m.is_watertight and m.volume > 0
    assert abs(m.volume - analytic) / analytic < 0.005
    # bounds map sample 0 -> min and sample N-1 -> max, like scikit-image's spacing + offset
    lo, hi = np.array([-1.0, -2.0, 0.5]), np.array([1.0, 3.0, 2.5])
    mb, _ = extract(tmp_path, g, "bounded", "--bounds", ",".join(map(str, [*lo, *hi])))
    spacing = (hi - lo) / 63
    v, f, _, _ = measure.marching_cubes(g, 0.0, spacing=tuple(spacing))
    ref = trimesh.Trimesh(v + lo, f, process=False)
    assert abs(mb.volume - abs(ref.volume)) / abs(ref.volume) < 0.005
    assert np.allclose(mb.bounds, ref.bounds, atol=1e-4)


def test_open_surface_at_grid_border(tmp_path):
    # A plane through the grid: an open sheet, every face kept, boundary only at the grid border.
    X, Y, Z = coords(32)
    g = (0.3 * X + 0.2 * Y + Z - 15.37).astype(np.float32)
    m, out = extract(tmp_path, g, "plane")
    v, f, _, _ = measure.marching_cubes(g, 0.0)
    assert len(m.faces) == len(f)
    info = json.loads(run("mesh-info", out, "--json").stdout)
    assert info["nonmanifold_edges"] == 0 and info["boundary_edges"] > 0 and info["winding_consistent"]


def colored_mesh(tmp_path):
    g, _ = torus(64)
    _, out = extract(tmp_path, g, "torus_c")
    colored = tmp_path / "colored.ply"
    run("mesh-convert", out, "-o", colored, "--color-by-position", "--normals")
    return colored


def expected_colors(v):
    lo, hi = v.min(axis=0), v.max(axis=0)
    return np.round((v - lo) / (hi - lo) * 255)


@pytest.mark.parametrize("fmt", ["glb", "ply", "obj", "stl"])
def test_exporters_round_trip_in_trimesh(tmp_path, fmt):
    src = colored_mesh(tmp_path)
    base = trimesh.load(str(src), process=False)
    out = tmp_path / f"out.{fmt}"
    run("mesh-convert", src, "-o", out)
    m = load_mesh(out)
    if fmt == "stl":
        assert len(m.faces) == len(base.faces)
        m.merge_vertices()
        assert len(m.vertices) == len(base.vertices)
        assert m.is_watertight and abs(m.volume - base.volume) < 1e-3 * base.volume
        return
    assert len(m.vertices) == len(base.vertices) and len(m.faces) == len(base.faces)
    assert np.array_equal(np.asarray(m.faces), np.asarray(base.faces))
    assert np.allclose(m.vertices, base.vertices, atol=1e-6)
    assert m.is_watertight and m.is_winding_consistent
    if fmt == "glb":   # with a material, trimesh keeps COLOR_0 as a vertex attribute
        col = np.asarray(m.visual.vertex_attributes["color"])[:, :3].astype(np.float64)
    else:
        col = np.asarray(m.visual.vertex_colors)[:, :3].astype(np.float64)
    assert np.abs(col - expected_colors(np.asarray(m.vertices))).max() <= 1.0
    # and our own importer reads it back unchanged
    info = json.loads(run("mesh-info", out, "--json").stdout)
    assert info["vertices"] == len(base.vertices) and info["faces"] == len(base.faces)
    assert info["watertight"] and info["has_colors"]


def test_glb_strict_structure(tmp_path):
    import pygltflib

    src = colored_mesh(tmp_path)
    out = tmp_path / "s.glb"
    run("mesh-convert", src, "-o", out)
    data = out.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67 and version == 2 and length == len(data)
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942 and blen % 4 == 0 and 28 + jlen + blen == len(data)
    doc = json.loads(data[20:20 + jlen])
    assert doc["asset"]["version"] == "2.0"
    assert doc["buffers"][0]["byteLength"] <= blen and blen - doc["buffers"][0]["byteLength"] < 4
    binary = data[28 + jlen:]
    sizes = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
    comps = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
    for bv in doc["bufferViews"]:
        assert bv.get("byteOffset", 0) % 4 == 0
        assert bv.get("byteOffset", 0) + bv["byteLength"] <= doc["buffers"][0]["byteLength"]
    prim = doc["meshes"][0]["primitives"][0]
    assert set(prim["attributes"]) >= {"POSITION", "NORMAL", "COLOR_0"}
    assert "material" in prim and "pbrMetallicRoughness" in doc["materials"][prim["material"]]
    arrays = {}
    for name, idx in list(prim["attributes"].items()) + [("indices", prim["indices"])]:
        acc = doc["accessors"][idx]
        bv = doc["bufferViews"][acc["bufferView"]]
        esize = sizes[acc["componentType"]] * comps[acc["type"]]
        assert (bv.get("byteOffset", 0) + acc.get("byteOffset", 0)) % sizes[acc["componentType"]] == 0
        assert acc.get("byteOffset", 0) + acc["count"] * esize <= bv["byteLength"]
        dt = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}[acc["componentType"]]
        start = bv.get("byteOffset", 0) + acc.get("byteOffset", 0)
        arrays[name] = np.frombuffer(binary, dtype=dt, count=acc["count"] * comps[acc["type"]], offset=start)
        arrays[name] = arrays[name].reshape(acc["count"], comps[acc["type"]])
    pos_acc = doc["accessors"][prim["attributes"]["POSITION"]]
    assert np.allclose(pos_acc["min"], arrays["POSITION"].min(axis=0), atol=0)
    assert np.allclose(pos_acc["max"], arrays["POSITION"].max(axis=0), atol=0)
    assert arrays["indices"].max() < pos_acc["count"]
    col_acc = doc["accessors"][prim["attributes"]["COLOR_0"]]
    assert col_acc["componentType"] in (5121, 5123, 5126) and (col_acc["componentType"] == 5126 or col_acc.get("normalized"))
    assert np.abs(arrays["COLOR_0"][:, :3] - expected_colors(arrays["POSITION"].astype(np.float64))).max() <= 1
    assert np.allclose(np.linalg.norm(arrays["NORMAL"], axis=1), 1, atol=1e-5)
    g = pygltflib.GLTF2().load(str(out))
    assert len(g.meshes) == 1 and g.accessors[g.meshes[0].primitives[0].attributes.POSITION].count == pos_acc["count"]


def bumpy_sphere(n):
    X, Y, Z = coords(n)
    c = 0.5 * (n - 1) + 0.21
    x, y, z = X - c, Y - c, Z - c
    r = np.sqrt(x * x + y * y + z * z) + 1e-9
    g = r - 0.36 * n * (1 + 0.08 * np.sin(5 * np.arctan2(y, x)) * np.sin(4 * np.arccos(z / r)))
    return g.astype(np.float32)


def test_decimation_keeps_watertight_and_shape(tmp_path):
    g = bumpy_sphere(192)
    dense, dense_path = extract(tmp_path, g, "dense")
    assert len(dense.faces) >= 180_000, len(dense.faces)
    out = tmp_path / "dec.ply"
    run("mesh-convert", dense_path, "-o", out, "--simplify", 20000)
    m = trimesh.load(str(out), process=False)
    assert 19_000 <= len(m.faces) <= 20_000
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0
    assert m.euler_number == dense.euler_number
    diag = np.linalg.norm(dense.bounds[1] - dense.bounds[0])
    a = np.vstack([dense.vertices, dense.sample(200_000, seed=1)])
    b = np.vstack([m.vertices, m.sample(200_000, seed=2)])
    h = max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())
    assert h < 0.01 * diag, f"Hausdorff {h} vs diagonal {diag}"


def test_cleanup_smoothing_and_preview(tmp_path):
    g, analytic = sphere(64)
    _, out = extract(tmp_path, g, "s")
    sm = tmp_path / "smooth.glb"
    run("mesh-convert", out, "-o", sm, "--smooth", 10, "--clean", "--keep-largest", 1)
    m = load_mesh(sm)
    assert m.is_watertight and abs(m.volume - analytic) / analytic < 0.01   # Taubin keeps the volume
    png = tmp_path / "p.png"
    run("preview", sm, "-o", png, "--size", 256)
    from PIL import Image
    im = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert im.shape == (256, 256, 3)
    # each of the four views shows the mesh (non-background pixels) and shading varies
    for q in (im[:128, :128], im[:128, 128:], im[128:, :128], im[128:, 128:]):
        fg = (q != 255).any(axis=2)
        assert 0.1 < fg.mean() < 0.9 and q[fg].std() > 5


def test_errors_leave_no_file(tmp_path):
    g, _ = sphere(32)
    bad = g.copy()
    bad[3, 4, 5] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    out = tmp_path / "nan.glb"
    r = run("mesh", tmp_path / "nan.npy", "-o", out, ok=False)
    assert r.returncode != 0 and "NaN" in r.stderr and not out.exists()
    bad[3, 4, 5] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    r = run("mesh", tmp_path / "inf.npy", "-o", out, ok=False)
    assert r.returncode != 0 and not out.exists()
    np.save(tmp_path / "flat.npy", g[0])
    r = run("mesh", tmp_path / "flat.npy", "-o", out, ok=False)
    assert r.returncode != 0 and not out.exists()
    np.save(tmp_path / "thin.npy", g[:1])
    r = run("mesh", tmp_path / "thin.npy", "-o", out, ok=False)
    assert r.returncode != 0 and not out.exists()
    np.save(tmp_path / "ok.npy", g)
    r = run("mesh", tmp_path / "ok.npy", "-o", tmp_path / "no" / "such" / "dir.glb", ok=False)
    assert r.returncode != 0 and not (tmp_path / "no").exists()
    r = run("mesh", tmp_path / "ok.npy", "-o", tmp_path / "x.unknown", ok=False)
    assert r.returncode != 0 and not (tmp_path / "x.unknown").exists()
    # existing file: kept unless --overwrite
    out.write_bytes(b"keep me")
    r = run("mesh", tmp_path / "ok.npy", "-o", out, ok=False)
    assert r.returncode != 0 and out.read_bytes() == b"keep me"
    run("mesh", tmp_path / "ok.npy", "-o", out, "--overwrite")
    assert out.read_bytes()[:4] == b"glTF"
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []
    # a corrupt mesh file is an error, not a crash
    (tmp_path / "bad.glb").write_bytes(b"glTF\x02\x00\x00\x00\xff\xff\x00\x00")
    r = run("mesh-info", tmp_path / "bad.glb", ok=False)
    assert r.returncode != 0 and "Signal" not in r.stderr
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nproperty float x\nproperty float y\nproperty float z\nend_header\n\x00\x00")
    r = run("mesh-info", tmp_path / "bad.ply", ok=False)
    assert r.returncode != 0 and "Signal" not in r.stderr


def test_colour_grid_sampled_at_vertices(tmp_path):
    # A colour grid that is linear in position is reproduced exactly by trilinear sampling, so each
    # vertex colour must equal its own normalized position (checked in trimesh after a GLB trip).
    n = 48
    g, _ = sphere(n)
    X, Y, Z = coords(n)
    col = (np.stack([X, Y, Z], axis=-1) / (n - 1)).astype(np.float32)
    np.save(tmp_path / "c.npy", col)
    m, _ = extract(tmp_path, g, "col", "--color-grid", tmp_path / "c.npy", fmt="glb")
    got = np.asarray(m.visual.vertex_attributes["color"])[:, :3].astype(np.float64)
    want = np.round(np.asarray(m.vertices) / (n - 1) * 255)
    assert np.abs(got - want).max() <= 1
    np.save(tmp_path / "bad.npy", col[:, :, :5])
    r = run("mesh", tmp_path / "col.npy", "-o", tmp_path / "bad.glb", "--color-grid", tmp_path / "bad.npy", ok=False)
    assert r.returncode != 0 and not (tmp_path / "bad.glb").exists()
