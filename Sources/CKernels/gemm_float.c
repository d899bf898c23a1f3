/* Prefill GEMM on float weights stored as f32, f16 or bf16, without packing or widening copies:
 * Y[i, r] = sum_k X[i, k] * W[r, k] (W row-major [rows, k] in its stored format, X fp32).
 *
 * A register tile of 4 weight rows x 6 tokens keeps 24 zmm accumulators over the whole k loop: each
 * weight vector (widened in registers) is used for 6 tokens and each activation vector for 4 rows,
 * and the weights are read straight from the (memory-mapped) checkpoint. Tokens are taken in blocks
 * so the activations a block needs stay in L2 while every row of the range streams past them once.
 * The next row group is prefetched while a tile runs (the weights stream from memory: a model's
 * matrices do not stay in cache between calls). The 4 sums of a token are reduced together (a
 * transpose-add tree). AVX-512F only; the caller falls
 * back to widen-then-sgemm without it. */
#include "hy_kernels.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define HYI_ATTR_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

enum { RT = 4, TT = 6 };

/* Tokens per block: their activations (k floats each) take ~384 KB, half of a 1 MB L2. */
static int64_t token_block(int64_t k) {
    int64_t tb = (384 * 1024 / 4) / (k > 0 ? k : 1) / TT * TT;
    return tb < TT ? TT : (tb > 40 * TT ? 40 * TT : tb);
}

/* 16 weights of format fmt at p (mask m for a tail) -> fp32 lanes. */
HYI_ATTR_512 static inline __m512 load_w(int fmt, const void *p, __mmask16 m) {
    if (fmt == HYI_FLOAT_F32) return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (fmt == HYI_FLOAT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Sum of each of 4 vectors -> lanes 0..3 of the result. */
HYI_ATTR_512 static inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  /* a0 b0 a1 b1 per 128 */
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 abcd = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
                                _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* The tile: rows r..r+nr (nr <= RT) x tokens i..i+nt (nt <= TT), full k. Always-inlined with constant
 * nr / nt so the accumulators live in registers. */
#define HYI_TILE(F, FMT, NR, NT)                                                                           \
    HYI_ATTR_512 static void tile_##F##_##NR##_##NT(const uint8_t *w, size_t row_bytes, const float *x,    \
                                                    int64_t ldx, int64_t k, float *y, int64_t ldy) {      \
        const int fmt = FMT;                                                                               \
        const size_t esz = FMT == HYI_FLOAT_F32 ? 4 : 2;                                                   \
        __m512 acc[NR][NT];                                                                                \
        _Pragma("GCC unroll 4") for (int a = 0; a < NR; a++)                                              \
            _Pragma("GCC unroll 6") for (int b = 0; b < NT; b++) acc[a][b] = _mm512_setzero_ps();          \
        for (int64_t kk = 0; kk < k; kk += 16) {                                                          \
            __mmask16 m = k - kk >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - kk)) - 1);           \
            __m512 wv[NR];                                                                                 \
            _Pragma("GCC unroll 4") for (int a = 0; a < NR; a++) {                                        \
                wv[a] = load_w(fmt, w + (size_t)a * row_bytes + (size_t)kk * esz, m);                      \
                _mm_prefetch((const char *)(w + (size_t)(a + NR) * row_bytes + (size_t)kk * esz), _MM_HINT_T0); \
            }                                                                                              \
            _Pragma("GCC unroll 6") for (int b = 0; b < NT; b++) {                                        \
                __m512 xv = _mm512_maskz_loadu_ps(m, x + b * ldx + kk);                                    \
                _Pragma("GCC unroll 4") for (int a = 0; a < NR; a++)                                      \
                    acc[a][b] = _mm512_fmadd_ps(wv[a], xv, acc[a][b]);                                     \
            }                                                                                              \
        }                                                                                                  \
        _Pragma("GCC unroll 6") for (int b = 0; b < NT; b++) {                                            \
            __m512 z = _mm512_setzero_ps();                                                                \
            __m128 s = reduce4(acc[0][b], NR > 1 ? acc[NR > 1 ? 1 : 0][b] : z,                             \
                               NR > 2 ? acc[NR > 2 ? 2 : 0][b] : z, NR > 3 ? acc[NR > 3 ? 3 : 0][b] : z);  \
            float out[4];                                                                                  \
            _mm_storeu_ps(out, s);                                                                         \
            _Pragma("GCC unroll 4") for (int a = 0; a < NR; a++) y[b * ldy + a] = out[a];                  \
        }                                                                                                  \
    }

/* Every (format, rows, tokens) tile is its own function, so the format's load folds into the loop. */
#define HYI_TILES_NR(F, FMT, NR) HYI_TILE(F, FMT, NR, 1) HYI_TILE(F, FMT, NR, 2) HYI_TILE(F, FMT, NR, 3) \
    HYI_TILE(F, FMT, NR, 4) HYI_TILE(F, FMT, NR, 5) HYI_TILE(F, FMT, NR, 6)
#define HYI_TILES(F, FMT) HYI_TILES_NR(F, FMT, 1) HYI_TILES_NR(F, FMT, 2) HYI_TILES_NR(F, FMT, 3) HYI_TILES_NR(F, FMT, 4)
HYI_TILES(f32, HYI_FLOAT_F32)
HYI_TILES(f16, HYI_FLOAT_F16)
HYI_TILES(bf16, HYI_FLOAT_BF16)

typedef void (*tile_fn)(const uint8_t *, size_t, const float *, int64_t, int64_t, float *, int64_t);

#define HYI_ROW(F, NR) { tile_##F##_##NR##_1, tile_##F##_##NR##_2, tile_##F##_##NR##_3, \
                         tile_##F##_##NR##_4, tile_##F##_##NR##_5, tile_##F##_##NR##_6 }
#define HYI_FMT(F) { HYI_ROW(F, 1), HYI_ROW(F, 2), HYI_ROW(F, 3), HYI_ROW(F, 4) }
static const tile_fn k_tiles[3][RT][TT] = { HYI_FMT(f32), HYI_FMT(f16), HYI_FMT(bf16) };

HYI_ATTR_512 static void gemm_512(int fmt, const uint8_t *w, size_t row_bytes, int64_t r0, int64_t r1,
                                  const float *x, int64_t ldx, int64_t t, int64_t k, float *y, int64_t ldy) {
    const tile_fn (*tiles)[TT] = k_tiles[fmt];
    const int64_t tb = token_block(k);
    for (int64_t i0 = 0; i0 < t; i0 += tb) {
        int64_t i1 = i0 + tb < t ? i0 + tb : t;
        for (int64_t r = r0; r < r1; r += RT) {
            int64_t nr = r1 - r < RT ? r1 - r : RT;
            for (int64_t i = i0; i < i1; i += TT) {
                int64_t nt = i1 - i < TT ? i1 - i : TT;
                tiles[nr - 1][nt - 1](w + (size_t)r * row_bytes, row_bytes, x + i * ldx, ldx, k, y + i * ldy + r, ldy);
            }
        }
    }
}

bool hyi_gemm_float(int fmt, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                    int64_t t, int64_t k, float *y, int64_t ldy) {
    if (!hyi_cpu_has_avx512f() || (fmt != HYI_FLOAT_F32 && fmt != HYI_FLOAT_F16 && fmt != HYI_FLOAT_BF16)) return false;
    gemm_512(fmt, (const uint8_t *)w, row_bytes, r0, r1, x, ldx, t, k, y, ldy);
    return true;
}

#else
bool hyi_gemm_float(int fmt, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                    int64_t t, int64_t k, float *y, int64_t ldy) {
    (void)fmt; (void)w; (void)row_bytes; (void)r0; (void)r1; (void)x; (void)ldx; (void)t; (void)k; (void)y; (void)ldy;
    return false;
}
#endif
