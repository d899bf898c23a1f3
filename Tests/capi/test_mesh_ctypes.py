"""The mesh section of the C ABI (include/hunyuan.h), called through ctypes on HUNYUAN_LIB:
results checked with trimesh / scikit-image, and every error path returns a status (no crash, no
file left behind)."""
import ctypes as C
import math

import numpy as np
import pytest
import trimesh
from skimage import measure

from conftest import LIB

FIELD_CB = C.CFUNCTYPE(C.c_bool, C.POINTER(C.c_int32), C.POINTER(C.c_int32), C.POINTER(C.c_float), C.c_void_p)


class Stats(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("n_vertices", C.c_uint64), ("n_faces", C.c_uint64),
                ("bounds", C.c_float * 6), ("watertight", C.c_bool), ("winding_consistent", C.c_bool),
                ("euler_characteristic", C.c_int64), ("n_components", C.c_uint64),
                ("area", C.c_double), ("volume", C.c_double)]


@pytest.fixture(scope="module")
def lib():
    if not LIB.exists():
        pytest.fail(f"libhunyuan not built at {LIB} (set HUNYUAN_LIB)")
    L = C.CDLL(str(LIB))
    P = C.c_void_p
    L.hy_last_error.restype = C.c_char_p
    L.hy_mesh_from_grid.argtypes = [C.POINTER(C.c_float), C.c_size_t, C.POINTER(C.c_int32), C.POINTER(C.c_float),
                                    C.c_float, C.c_uint32, C.c_int32, C.POINTER(P)]
    L.hy_mesh_from_field.argtypes = [C.POINTER(C.c_int32), C.POINTER(C.c_float), C.c_float, C.c_uint32, C.c_int32,
                                     FIELD_CB, C.c_void_p, C.POINTER(P)]
    L.hy_mesh_vertex_count.argtypes = [P]; L.hy_mesh_vertex_count.restype = C.c_size_t
    L.hy_mesh_face_count.argtypes = [P]; L.hy_mesh_face_count.restype = C.c_size_t
    L.hy_mesh_positions.argtypes = [P]; L.hy_mesh_positions.restype = C.POINTER(C.c_float)
    L.hy_mesh_faces.argtypes = [P]; L.hy_mesh_faces.restype = C.POINTER(C.c_uint32)
    L.hy_mesh_colors.argtypes = [P, C.POINTER(C.c_int32)]; L.hy_mesh_colors.restype = C.POINTER(C.c_float)
    L.hy_mesh_normals.argtypes = [P]; L.hy_mesh_normals.restype = C.POINTER(C.c_float)
    L.hy_mesh_set_colors.argtypes = [P, C.POINTER(C.c_float), C.c_size_t, C.c_int32]
    L.hy_mesh_get_stats.argtypes = [P, C.POINTER(Stats)]
    L.hy_mesh_clean.argtypes = [P, C.c_float, C.c_size_t, C.c_size_t]
    L.hy_mesh_smooth.argtypes = [P, C.c_int32, C.c_int]
    L.hy_mesh_simplify.argtypes = [P, C.c_size_t]
    L.hy_mesh_compute_normals.argtypes = [P]
    L.hy_mesh_save.argtypes = [P, C.c_char_p, C.c_uint32]
    L.hy_mesh_load.argtypes = [C.c_char_p, C.POINTER(P)]
    L.hy_mesh_render_preview.argtypes = [P, C.c_char_p, C.c_int32, C.c_uint32]
    L.hy_mesh_free.argtypes = [P]
    return L


def sphere(n, r, c):
    x = np.arange(n, dtype=np.float64)
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    return (np.sqrt((X - c[0]) ** 2 + (Y - c[1]) ** 2 + (Z - c[2]) ** 2) - r).astype(np.float32)


def from_grid(L, g, bounds=None, level=0.0, flags=0, count=None):
    dims = (C.c_int32 * 3)(*g.shape)
    b = (C.c_float * 6)(*bounds) if bounds is not None else None
    out = C.c_void_p(123)
    g = np.ascontiguousarray(g, dtype=np.float32)
    st = L.hy_mesh_from_grid(g.ctypes.data_as(C.POINTER(C.c_float)), g.size if count is None else count, dims, b,
                             level, flags, 0, C.byref(out))
    return st, out


def arrays(L, m):
    nv, nf = L.hy_mesh_vertex_count(m), L.hy_mesh_face_count(m)
    v = np.ctypeslib.as_array(L.hy_mesh_positions(m), shape=(nv, 3)).copy()
    f = np.ctypeslib.as_array(L.hy_mesh_faces(m), shape=(nf, 3)).copy()
    return v, f


def test_grid_to_mesh_matches_references(lib, tmp_path):
    r, c = 17.3, (24.2, 25.1, 23.7)
    g = sphere(50, r, c)
    st, m = from_grid(lib, g)
    assert st == 0, lib.hy_last_error()
    v, f = arrays(lib, m)
    tm = trimesh.Trimesh(v, f, process=False)
    assert tm.is_watertight and tm.is_winding_consistent
    ref_v, ref_f, _, _ = measure.marching_cubes(g, 0.0)
    ref = abs(trimesh.Trimesh(ref_v, ref_f, process=False).volume)
    assert abs(tm.volume - ref) / ref < 0.005
    assert abs(tm.volume - 4 / 3 * math.pi * r ** 3) / (4 / 3 * math.pi * r ** 3) < 0.005
    s = Stats(); s.struct_size = C.sizeof(Stats)
    assert lib.hy_mesh_get_stats(m, C.byref(s)) == 0
    assert s.watertight and s.winding_consistent and s.euler_characteristic == 2 and s.n_components == 1
    assert s.n_vertices == len(v) and abs(s.volume - tm.volume) < 1e-6 * tm.volume
    # colours + save + load through the library; trimesh reads the same colours
    col = ((v - v.min(0)) / (v.max(0) - v.min(0))).astype(np.float32)
    assert lib.hy_mesh_set_colors(m, col.ctypes.data_as(C.POINTER(C.c_float)), col.size, 3) == 0
    assert lib.hy_mesh_compute_normals(m) == 0
    ch = C.c_int32()
    back = np.ctypeslib.as_array(lib.hy_mesh_colors(m, C.byref(ch)), shape=(len(v), 3))
    assert ch.value == 3 and np.array_equal(back, col)
    path = str(tmp_path / "m.ply").encode()
    assert lib.hy_mesh_save(m, path, 0) == 0
    assert lib.hy_mesh_save(m, path, 0) == 2          # exists, no overwrite
    assert lib.hy_mesh_save(m, path, 1) == 0
    t = trimesh.load(path.decode(), process=False)
    assert np.abs(np.asarray(t.visual.vertex_colors)[:, :3] - np.round(col * 255)).max() <= 1
    m2 = C.c_void_p()
    assert lib.hy_mesh_load(path, C.byref(m2)) == 0 and lib.hy_mesh_vertex_count(m2) == len(v)
    assert lib.hy_mesh_simplify(m2, 1000) == 0
    assert lib.hy_mesh_face_count(m2) <= 1000
    v2, f2 = arrays(lib, m2)
    assert trimesh.Trimesh(v2, f2, process=False).is_watertight
    assert lib.hy_mesh_smooth(m2, 3, 0) == 0 and lib.hy_mesh_clean(m2, 0.0, 1, 0) == 0
    png = tmp_path / "p.png"
    assert lib.hy_mesh_render_preview(m2, str(png).encode(), 128, 0) == 0 and png.read_bytes()[:4] == b"\x89PNG"
    assert lib.hy_mesh_render_preview(m2, str(png).encode(), 5, 1) == 1
    lib.hy_mesh_free(m2)
    lib.hy_mesh_free(m)
    lib.hy_mesh_free(None)


def test_edge_vertices_only_is_the_classic_vertex_set(lib):
    """HY_MESH_EDGE_VERTICES_ONLY gives exactly PyMCubes' (classic marching cubes') vertex set, on a
    gyroid and on white noise (ambiguous faces everywhere); without it, the only additions are the
    cell-centre vertices, and the surface stays consistently wound."""
    from scipy.spatial import cKDTree
    mcubes = pytest.importorskip("mcubes")
    x = np.linspace(0, 4 * math.pi, 61)
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    gyroid = (np.sin(X) * np.cos(Y) + np.sin(Y) * np.cos(Z) + np.sin(Z) * np.cos(X)).astype(np.float32)
    noise = np.random.default_rng(5).standard_normal((28, 28, 28)).astype(np.float32)
    centres = 0
    for g in (gyroid, noise):
        g[np.abs(g) < 1e-4] = 1e-4  # no sample on the level: both codes then agree on every sign
        ref_v, _ = mcubes.marching_cubes(g.astype(np.float64), 0.0)
        st, m = from_grid(lib, g, flags=2)
        assert st == 0, lib.hy_last_error()
        v, _ = arrays(lib, m)
        assert len(v) == len(ref_v)
        assert cKDTree(v).query(ref_v)[0].max() < 1e-4 and cKDTree(ref_v).query(v)[0].max() < 1e-4
        lib.hy_mesh_free(m)
        st, m = from_grid(lib, g, flags=0)
        assert st == 0
        v0, f0 = arrays(lib, m)
        extra = cKDTree(ref_v).query(v0)[0] > 1e-4
        assert len(v0) == len(ref_v) + extra.sum()
        centres += extra.sum()
        assert trimesh.Trimesh(v0, f0, process=False).is_winding_consistent
        lib.hy_mesh_free(m)
    assert centres > 0
    st, m = from_grid(lib, gyroid, flags=4)
    assert st == 1 and b"flags" in lib.hy_last_error()


def test_field_callback_matches_grid(lib):
    r, c = 11.2, (15.3, 16.1, 14.8)
    g = sphere(32, r, c)
    calls = []

    @FIELD_CB
    def field(origin, dims, out, user):
        o = [origin[i] for i in range(3)]; d = [dims[i] for i in range(3)]
        calls.append((o, d))
        block = g[o[0]:o[0] + d[0], o[1]:o[1] + d[1], o[2]:o[2] + d[2]]
        C.memmove(out, np.ascontiguousarray(block).ctypes.data, block.nbytes)
        return True

    dims = (C.c_int32 * 3)(32, 32, 32)
    m = C.c_void_p()
    assert lib.hy_mesh_from_field(dims, None, 0.0, 0, 1, field, None, C.byref(m)) == 0, lib.hy_last_error()
    assert len(calls) > 1 and all(d[1:] == [32, 32] for _, d in calls)
    st, mg = from_grid(lib, g)
    assert np.array_equal(arrays(lib, m)[1], arrays(lib, mg)[1])
    assert np.array_equal(arrays(lib, m)[0], arrays(lib, mg)[0])
    lib.hy_mesh_free(m); lib.hy_mesh_free(mg)

    @FIELD_CB
    def cancel(origin, dims, out, user):
        return False

    m = C.c_void_p(5)
    assert lib.hy_mesh_from_field(dims, None, 0.0, 0, 1, cancel, None, C.byref(m)) == 7 and not m.value


def test_errors_are_statuses(lib, tmp_path):
    g = sphere(16, 5.2, (7.3, 7.6, 7.9))
    bad = g.copy(); bad[2, 3, 4] = np.nan
    st, m = from_grid(lib, bad)
    assert st == 1 and not m.value and b"NaN" in lib.hy_last_error()
    bad[2, 3, 4] = np.inf
    assert from_grid(lib, bad)[0] == 1
    assert from_grid(lib, g, count=g.size - 1)[0] == 1
    assert from_grid(lib, g, level=float("nan"))[0] == 1
    assert from_grid(lib, g, bounds=[1, 0, 0, 0, 1, 1])[0] == 1
    assert from_grid(lib, g[:1])[0] == 1
    out = C.c_void_p()
    assert lib.hy_mesh_from_grid(None, 10, (C.c_int32 * 3)(2, 2, 2), None, 0.0, 0, 0, C.byref(out)) == 1
    assert lib.hy_mesh_from_grid(None, 0, None, None, 0.0, 0, 0, None) == 1
    assert lib.hy_mesh_load(str(tmp_path / "missing.glb").encode(), C.byref(out)) == 2
    (tmp_path / "junk.glb").write_bytes(b"glTF\x02\x00\x00\x00" + b"\xff" * 40)
    assert lib.hy_mesh_load(str(tmp_path / "junk.glb").encode(), C.byref(out)) == 3
    st, m = from_grid(lib, g)
    target = tmp_path / "no" / "dir" / "m.glb"
    assert lib.hy_mesh_save(m, str(target).encode(), 1) == 2 and not target.parent.exists()
    assert lib.hy_mesh_save(m, str(tmp_path / "m.xyz").encode(), 1) == 4
    assert lib.hy_mesh_save(None, b"x.glb", 1) == 1 and lib.hy_mesh_simplify(None, 5) == 1
    assert lib.hy_mesh_set_colors(m, (C.c_float * 3)(1, 1, 1), 3, 3) == 1
    assert lib.hy_mesh_vertex_count(None) == 0 and not lib.hy_mesh_positions(None)
    assert list(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []
    lib.hy_mesh_free(m)
