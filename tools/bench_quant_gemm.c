/* Microbenchmark of the quantized prefill GEMM (Sources/CHunyuan/quant_gemm.c) against the previous
 * prefill path (dequantize tiles of 64 Ki weights to f32 + OpenBLAS sgemm), single thread, on the
 * bench model's shapes. Also cross-checks every path against the scalar one.
 *
 *   clang -O2 -march=haswell -ISources/CHunyuan/include tools/bench_quant_gemm.c \
 *       Sources/CHunyuan/quant_gemm.c Sources/CHunyuan/quant_kernels.c \
 *       $(pkg-config --cflags --libs openblas) -lm -o /tmp/bench_quant_gemm
 *   OPENBLAS_NUM_THREADS=1 /tmp/bench_quant_gemm [fmt...]      (fmt: q8_0 q4_0 q4_k)
 *
 * GOP/s counts 2·t·rows·cols operations per call (best of several timed runs). */
#include "hunyuan_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)rng; }
static float frnd(void) { return (float)(rnd() >> 8) / 8388608.0f - 1.0f; }

static uint16_t f16bits(float f) { __fp16 h = (__fp16)f; uint16_t u; memcpy(&u, &h, 2); return u; }

/* Random stored rows (valid blocks: small positive scales, random codes). */
static void fill_weights(int fmt, uint8_t *w, int64_t rows, size_t row_bytes) {
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = w + r * row_bytes;
        for (size_t i = 0; i < row_bytes; i++) row[i] = (uint8_t)rnd();
        size_t bb = fmt == HYI_Q8_0 ? 34 : fmt == HYI_Q4_0 ? 18 : 148;
        for (size_t b = 0; b < row_bytes / bb; b++) {
            uint16_t d = f16bits(0.001f + 0.01f * (float)(rnd() % 1000) / 1000.0f);
            memcpy(row + b * bb, &d, 2);
            if (fmt == HYI_Q4_K) { uint16_t m = f16bits(0.0005f); memcpy(row + b * bb + 2, &m, 2); }
            if (fmt == HYI_Q8_0) for (int i = 0; i < 32; i++) if (row[b * bb + 2 + i] == 0x80) row[b * bb + 2 + i] = 0x81;
        }
    }
}

typedef struct { double best; } timing;

int main(int argc, char **argv) {
    const char *names[] = {"", "q8_0", "q4_0", "q4_k"};
    int fmts[3] = {HYI_Q8_0, HYI_Q4_0, HYI_Q4_K}, nf = 3;
    if (argc > 1) {
        nf = 0;
        for (int a = 1; a < argc; a++) for (int f = 1; f <= 3; f++) if (!strcmp(argv[a], names[f])) fmts[nf++] = f;
    }
    int shapes[3][2] = {{512, 2048}, {2048, 512}, {2048, 2048}};
    int ts[] = {4, 16, 32, 128};
    int vnni = hyi_cpu_has_avx512_vnni() && hyi_cpu_has_avx512f();
    printf("fmt   rows x cols   t   | GOP/s: scalar   avx2    vnni   deq+sgemm | vnni/sgemm avx2/sgemm | max rel diff vs scalar\n");
    for (int fi = 0; fi < nf; fi++) {
        int fmt = fmts[fi];
        for (int si = 0; si < 3; si++) {
            int64_t rows = shapes[si][0], cols = shapes[si][1], nb = (cols + 31) / 32;
            size_t row_bytes = fmt == HYI_Q8_0 ? nb * 34 : fmt == HYI_Q4_0 ? nb * 18 : ((nb + 7) / 8) * 148;
            uint8_t *w = malloc(rows * row_bytes);
            fill_weights(fmt, w, rows, row_bytes);
            for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++) {
                int64_t t = ts[ti];
                float *x = malloc(sizeof(float) * t * cols);
                for (int64_t i = 0; i < t * cols; i++) x[i] = frnd();
                int8_t *q = aligned_alloc(64, t * nb * 32);
                float *d = malloc(sizeof(float) * t * nb);
                int32_t *s = malloc(sizeof(int32_t) * t * nb);
                float *y[4];
                for (int k = 0; k < 4; k++) y[k] = calloc(t * rows, sizeof(float));
                double ops = 2.0 * t * rows * cols, gops[4] = {0};
                int reps = (int)(2e9 / ops) + 3;
                for (int path = 0; path < 3; path++) {
                    if (path == 2 && !vnni) continue;
                    if (path == 0 && ops > 3e8) { reps = 1; }
                    double best = 1e30;
                    for (int r = 0; r < (path == 0 ? 2 : reps); r++) {
                        double t0 = now();
                        hyi_quantize_rows_q8(x, t, cols, cols, q, d, s);
                        hyi_gemm_q(fmt, path, w, row_bytes, 0, rows, q, d, s, nb, t, y[path], rows);
                        double dt = now() - t0;
                        if (dt < best) best = dt;
                    }
                    gops[path] = ops / best * 1e-9;
                    reps = (int)(2e9 / ops) + 3;
                }
                /* previous path: dequantized tiles of 65536 weights + sgemm */
                {
                    int64_t tile_rows = 65536 / cols > 0 ? 65536 / cols : 1;
                    float *tile = malloc(sizeof(float) * tile_rows * cols);
                    double best = 1e30;
                    for (int r = 0; r < reps; r++) {
                        double t0 = now();
                        for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
                            int64_t nr = rows - r0 < tile_rows ? rows - r0 : tile_rows;
                            for (int64_t i = 0; i < nr; i++) hyi_dequant_row(fmt, w + (r0 + i) * row_bytes, cols, tile + i * cols);
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t, (int)nr, (int)cols, 1, x, (int)cols,
                                        tile, (int)cols, 0, y[3] + r0, (int)rows);
                        }
                        double dt = now() - t0;
                        if (dt < best) best = dt;
                    }
                    gops[3] = ops / best * 1e-9;
                    free(tile);
                }
                double diff[3] = {0};
                for (int path = 1; path < 3; path++) {
                    double num = 0, den = 0;
                    for (int64_t i = 0; i < t * rows; i++) { double e = y[path][i] - y[0][i]; num += e * e; den += (double)y[0][i] * y[0][i]; }
                    diff[path] = sqrt(num / (den > 0 ? den : 1));
                }
                printf("%-5s %4lld x %-5lld %4lld | %13.1f %7.1f %7.1f %9.1f | %9.2fx %9.2fx | %.2e %.2e\n", names[fmt],
                       (long long)rows, (long long)cols, (long long)t, gops[0], gops[1], gops[2], gops[3],
                       gops[2] / gops[3], gops[1] / gops[3], diff[1], diff[2]);
                fflush(stdout);
                free(x); free(q); free(d); free(s);
                for (int k = 0; k < 4; k++) free(y[k]);
            }
            free(w);
        }
    }
    return 0;
}
