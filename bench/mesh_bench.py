"""Marching-cubes benchmark: hunyuan-cli mesh-bench vs scikit-image and PyMCubes, same grids, same run.

    HUNYUAN_CLI=.build-mesh/release/hunyuan-cli [O3D_PYTHON=/path/to/python-with-open3d] \
        .venv/bin/python bench/mesh_bench.py [256 384]

The grid is a "noisy sphere": the signed distance to a sphere of radius 0.35*N (voxel units) plus
uniform noise of +-0.5 voxel (seed 0), level 0. Decimation: a bumpy sphere at 192^3 (~200k faces) to 20k faces, ours (quadric edge collapse) vs
Open3D's simplify_quadric_decimation when O3D_PYTHON names a Python with open3d(-cpu).
Each timing is the best of 3 runs; ours is timed
in-process by `mesh-bench` (no file I/O), the Python ones with time.perf_counter around the call.
"""
import json, os, subprocess, sys, tempfile, time

import numpy as np


def noisy_sphere(n):
    rng = np.random.default_rng(0)
    c = (n - 1) / 2
    x = np.arange(n, dtype=np.float32) - c
    d = np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2) - 0.35 * n
    return (d + rng.uniform(-0.5, 0.5, size=d.shape)).astype(np.float32)


def best(f, k=3):
    t = []
    for _ in range(k):
        t0 = time.perf_counter(); r = f(); t.append(time.perf_counter() - t0)
    return min(t), r


def main():
    cli = os.environ.get("HUNYUAN_CLI", ".build/release/hunyuan-cli")
    print("load average at start:", os.getloadavg())
    sizes = [int(a) for a in sys.argv[1:]] or [256, 384]
    from skimage import measure
    import mcubes
    rows = []
    for n in sizes:
        g = noisy_sphere(n)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "g.npy"); np.save(p, g)
            ours = {}
            for th in (1, 2):
                out = subprocess.run([cli, "mesh-bench", p, "--threads", str(th), "--repeats", "3"],
                                     check=True, capture_output=True, text=True).stdout
                ours[th] = json.loads(out)
        ts, (v, f, _, _) = best(lambda: measure.marching_cubes(g, 0.0))
        tm, (mv, mf) = best(lambda: mcubes.marching_cubes(g, 0.0))
        rows.append((n, ts, tm, ours[1]["seconds"], ours[2]["seconds"], len(f), ours[1]["faces"]))
        print(f"{n}^3: scikit-image {ts:.3f} s ({len(f)} faces), PyMCubes {tm:.3f} s ({len(mf)} faces), "
              f"hunyuan 1 thread {ours[1]['seconds']:.3f} s, 2 threads {ours[2]['seconds']:.3f} s "
              f"({ours[1]['faces']} faces)", flush=True)
    print("\n| grid | scikit-image | PyMCubes | hunyuan 1 thread | hunyuan 2 threads | speed-up vs fastest (1t / 2t) |")
    print("|---|---|---|---|---|---|")
    for n, ts, tm, o1, o2, _, _ in rows:
        fastest = min(ts, tm)
        print(f"| {n}³ | {ts:.3f} s | {tm:.3f} s | {o1:.3f} s | {o2:.3f} s | {fastest / o1:.2f}x / {fastest / o2:.2f}x |")
    decimation(cli)
    print("load average at end:", os.getloadavg())


def bumpy_sphere(n):
    c = 0.5 * (n - 1) + 0.21
    x = np.arange(n, dtype=np.float64) - c
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    r = np.sqrt(X * X + Y * Y + Z * Z) + 1e-9
    return (r - 0.36 * n * (1 + 0.08 * np.sin(5 * np.arctan2(Y, X)) * np.sin(4 * np.arccos(Z / r)))).astype(np.float32)


O3D_SNIPPET = """
import json, sys, time
import numpy as np, open3d as o3d
m = o3d.io.read_triangle_mesh(sys.argv[1])
best = 1e9
for _ in range(3):
    t0 = time.perf_counter(); d = o3d.geometry.TriangleMesh.simplify_quadric_decimation(m, int(sys.argv[2])); best = min(best, time.perf_counter() - t0)
o3d.io.write_triangle_mesh(sys.argv[3], d)
print(json.dumps({"seconds": best, "faces": len(d.triangles), "watertight": bool(d.is_watertight())}))
"""


def decimation(cli):
    import trimesh
    from scipy.spatial import cKDTree
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "b.npy"); np.save(p, bumpy_sphere(192))
        dense = os.path.join(d, "dense.ply")
        subprocess.run([cli, "mesh", p, "-o", dense], check=True, capture_output=True)
        ref = trimesh.load(dense, process=False)
        diag = np.linalg.norm(ref.bounds[1] - ref.bounds[0])
        a = np.vstack([ref.vertices, ref.sample(200_000, seed=1)])
        ta = cKDTree(a)

        def score(path):
            m = trimesh.load(path, process=False)
            b = np.vstack([m.vertices, m.sample(200_000, seed=2)])
            h = max(cKDTree(b).query(a)[0].max(), ta.query(b)[0].max())
            return len(m.faces), m.is_watertight, h / diag

        ours_path = os.path.join(d, "ours.ply")
        ours = json.loads(subprocess.run([cli, "mesh-bench", dense, "--simplify", "20000", "-o", ours_path],
                                         check=True, capture_output=True, text=True).stdout)
        f, w, h = score(ours_path)
        print(f"\ndecimation {len(ref.faces)} -> 20000 faces:")
        print("| tool | seconds | faces | watertight | Hausdorff / bbox diagonal |")
        print("|---|---|---|---|---|")
        print(f"| hunyuan | {ours['seconds']:.3f} | {f} | {w} | {h:.4f} |")
        o3d_py = os.environ.get("O3D_PYTHON")
        if o3d_py:
            o3_path = os.path.join(d, "o3d.ply")
            r = json.loads(subprocess.run([o3d_py, "-c", O3D_SNIPPET, dense, "20000", o3_path],
                                          check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            f, w, h = score(o3_path)
            print(f"| Open3D | {r['seconds']:.3f} | {f} | {w} | {h:.4f} |")


if __name__ == "__main__":
    main()
