#!/usr/bin/env python3
"""Measured sgemm GFLOP/s of the BLAS our engine links (system libopenblas.so.0), for GEMM bounds.

Calls cblas_sgemm through ctypes on row-major f32 matrices C[M,N] = A[M,K] · B[K,N] (default the
SVRM triplane projection shape 12288 × 1024 × 1024) with openblas_set_num_threads(t) and prints one
JSON object: {"lib": ..., "shape": [M,K,N], "gflops": {"1": best, "2": best, ...}}. Best of --reps
after one warm-up. Our engine calls the BLAS single-threaded from each of its own worker threads, so
the GEMM bound of a stage on T threads is flop / (T × gflops["1"]).
Env OPENBLAS_CORETYPE is honoured by OpenBLAS itself (leave it as the engine runs with it).
"""
import argparse
import ctypes
import ctypes.util
import json
import time

import numpy as np

ROW_MAJOR, NO_TRANS = 101, 111


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default="libopenblas.so.0")
    ap.add_argument("--shape", default="12288,1024,1024", help="M,K,N")
    ap.add_argument("-t", default="1,2", help="comma-separated BLAS thread counts")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    lib = ctypes.CDLL(a.lib)
    m, k, n = (int(x) for x in a.shape.split(","))
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, k), np.float32)
    B = rng.standard_normal((k, n), np.float32)
    C = np.zeros((m, n), np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    lib.cblas_sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, fp, ctypes.c_int, fp, ctypes.c_int,
                                                     ctypes.c_float, fp, ctypes.c_int]
    lib.cblas_sgemm.restype = None

    def run():
        lib.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, A.ctypes.data_as(fp), k,
                        B.ctypes.data_as(fp), n, 0.0, C.ctypes.data_as(fp), n)

    out = {}
    for t in (int(x) for x in a.t.split(",")):
        if hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_set_num_threads(t)
        run()
        best = float("inf")
        for _ in range(a.reps):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        out[str(t)] = round(2 * m * k * n / best / 1e9, 1)
    ref = A[:4].astype(np.float64) @ B.astype(np.float64)
    assert np.abs(C[:4] - ref).max() < 1e-2, "sgemm result is wrong"
    print(json.dumps({"lib": a.lib, "shape": [m, k, n], "gflops": out}))


if __name__ == "__main__":
    main()
