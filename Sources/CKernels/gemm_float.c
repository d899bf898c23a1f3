/* Prefill GEMM on float weights stored as f32, f16, bf16 (or q8_0 blocks: the KV cache), without packing
 * or widening copies: Y[i, r] = sum_k X[i, k] * W[r, k] (W row-major [rows, k] in its stored format,
 * X fp32); and the attention's P·V product over values stored the same ways (hyi_attn_pv).
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
#include "avx512_common.h"

enum { RT = 4, TT = 6 };

/* Tokens per block: their activations (k floats each) take ~384 KB, half of a 1 MB L2. */
static int64_t token_block(int64_t k) {
    int64_t tb = (384 * 1024 / 4) / (k > 0 ? k : 1) / TT * TT;
    return tb < TT ? TT : (tb > 40 * TT ? 40 * TT : tb);
}

/* Byte offset of element kk of a row in format fmt (q8_0: kk a multiple of 16; blocks of 32 values
 * after an f16 scale, 34 bytes). */
static inline size_t elem_offset(int fmt, int64_t kk) {
    switch (fmt) {
    case HYI_FLOAT_F32: return (size_t)kk * 4;
    case HYI_FLOAT_Q8_0: return (size_t)(kk >> 5) * 34 + 2 + (size_t)(kk & 31);
    default: return (size_t)kk * 2;
    }
}

/* Elements kk..kk+16 of the row at `row` in format fmt (mask m for a tail) -> fp32 lanes. */
HYI_ATTR_512 static inline __m512 load_w(int fmt, const uint8_t *row, int64_t kk, __mmask16 m) {
    const uint8_t *p = row + elem_offset(fmt, kk);
    if (fmt == HYI_FLOAT_F32) return _mm512_maskz_loadu_ps(m, p);
    if (fmt == HYI_FLOAT_Q8_0) {
        const uint8_t *blk = row + (size_t)(kk >> 5) * 34;
        uint16_t d16 = (uint16_t)(blk[0] | (blk[1] << 8));
        __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16((short)d16));
        __m512i q = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p));
        return _mm512_mul_ps(_mm512_cvtepi32_ps(q), d);
    }
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (fmt == HYI_FLOAT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The tile: rows r..r+nr (nr <= RT) x tokens i..i+nt (nt <= TT), full k. Always-inlined with constant
 * nr / nt so the accumulators live in registers. */
#define HYI_TILE(F, FMT, NR, NT)                                                                           \
    HYI_ATTR_512 static void tile_##F##_##NR##_##NT(const uint8_t *w, size_t row_bytes, const float *x,    \
                                                    int64_t ldx, int64_t k, float *y, int64_t ldy) {      \
        const int fmt = FMT;                                                                               \
        __m512 acc[NR][NT];                                                                                \
        _Pragma("GCC unroll 4") for (int a = 0; a < NR; a++)                                              \
            _Pragma("GCC unroll 6") for (int b = 0; b < NT; b++) acc[a][b] = _mm512_setzero_ps();          \
        for (int64_t kk = 0; kk < k; kk += 16) {                                                          \
            __mmask16 m = k - kk >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - kk)) - 1);           \
            __m512 wv[NR];                                                                                 \
            _Pragma("GCC unroll 4") for (int a = 0; a < NR; a++) {                                        \
                wv[a] = load_w(fmt, w + (size_t)a * row_bytes, kk, m);                                     \
                _mm_prefetch((const char *)(w + (size_t)(a + NR) * row_bytes + elem_offset(fmt, kk)), _MM_HINT_T0); \
            }                                                                                              \
            _Pragma("GCC unroll 6") for (int b = 0; b < NT; b++) {                                        \
                __m512 xv = _mm512_maskz_loadu_ps(m, x + b * ldx + kk);                                    \
                _Pragma("GCC unroll 4") for (int a = 0; a < NR; a++)                                      \
                    acc[a][b] = _mm512_fmadd_ps(wv[a], xv, acc[a][b]);                                     \
            }                                                                                              \
        }                                                                                                  \
        _Pragma("GCC unroll 6") for (int b = 0; b < NT; b++) {                                            \
            __m512 z = _mm512_setzero_ps();                                                                \
            __m128 s = hyi_reduce4(acc[0][b], NR > 1 ? acc[NR > 1 ? 1 : 0][b] : z,                             \
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
HYI_TILES(q8_0, HYI_FLOAT_Q8_0)

typedef void (*tile_fn)(const uint8_t *, size_t, const float *, int64_t, int64_t, float *, int64_t);

#define HYI_ROW(F, NR) { tile_##F##_##NR##_1, tile_##F##_##NR##_2, tile_##F##_##NR##_3, \
                         tile_##F##_##NR##_4, tile_##F##_##NR##_5, tile_##F##_##NR##_6 }
#define HYI_FMT(F) { HYI_ROW(F, 1), HYI_ROW(F, 2), HYI_ROW(F, 3), HYI_ROW(F, 4) }
static const tile_fn k_tiles[4][RT][TT] = { HYI_FMT(f32), HYI_FMT(f16), HYI_FMT(bf16), HYI_FMT(q8_0) };

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

static bool format_ok(int fmt, int64_t k) {
    return fmt == HYI_FLOAT_F32 || fmt == HYI_FLOAT_F16 || fmt == HYI_FLOAT_BF16 || (fmt == HYI_FLOAT_Q8_0 && k % 32 == 0);
}

bool hyi_gemm_float(int fmt, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                    int64_t t, int64_t k, float *y, int64_t ldy) {
    if (!hyi_cpu_has_avx512f() || !format_ok(fmt, k)) return false;
    gemm_512(fmt, (const uint8_t *)w, row_bytes, r0, r1, x, ldx, t, k, y, ldy);
    return true;
}

/* P·V tile: rows i..i+NR of P against value columns d0..d0+16·NV (masked past hd), accumulated in
 * registers over every key j (each value vector widened once and used for NR rows). */
enum { PV_R = 6, PV_V = 4 };
#define HYI_PV(F, FMT, NR, NV)                                                                             \
    HYI_ATTR_512 static void pv_##F##_##NR##_##NV(const uint8_t *v, size_t row_bytes, int64_t d0, int64_t hd, \
                                                  const float *p, int64_t ldp, int64_t n, float *acc, int64_t ldacc) { \
        __m512 a[NR][NV];                                                                                  \
        __mmask16 mk[NV];                                                                                  \
        _Pragma("GCC unroll 4") for (int c = 0; c < NV; c++) {                                            \
            int64_t rem = hd - d0 - 16 * c;                                                                \
            mk[c] = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1);                          \
        }                                                                                                  \
        _Pragma("GCC unroll 6") for (int r = 0; r < NR; r++)                                              \
            _Pragma("GCC unroll 4") for (int c = 0; c < NV; c++)                                          \
                a[r][c] = _mm512_maskz_loadu_ps(mk[c], acc + r * ldacc + d0 + 16 * c);                     \
        for (int64_t j = 0; j < n; j++) {                                                                 \
            const uint8_t *vr = v + (size_t)j * row_bytes;                                                 \
            __m512 vv[NV];                                                                                 \
            _Pragma("GCC unroll 4") for (int c = 0; c < NV; c++) vv[c] = load_w(FMT, vr, d0 + 16 * c, mk[c]); \
            _Pragma("GCC unroll 6") for (int r = 0; r < NR; r++) {                                        \
                __m512 pb = _mm512_set1_ps(p[r * ldp + j]);                                                \
                _Pragma("GCC unroll 4") for (int c = 0; c < NV; c++) a[r][c] = _mm512_fmadd_ps(pb, vv[c], a[r][c]); \
            }                                                                                              \
        }                                                                                                  \
        _Pragma("GCC unroll 6") for (int r = 0; r < NR; r++)                                              \
            _Pragma("GCC unroll 4") for (int c = 0; c < NV; c++)                                          \
                _mm512_mask_storeu_ps(acc + r * ldacc + d0 + 16 * c, mk[c], a[r][c]);                      \
    }
#define HYI_PV_NR(F, FMT, NR) HYI_PV(F, FMT, NR, 1) HYI_PV(F, FMT, NR, 2) HYI_PV(F, FMT, NR, 3) HYI_PV(F, FMT, NR, 4)
#define HYI_PVS(F, FMT) HYI_PV_NR(F, FMT, 1) HYI_PV_NR(F, FMT, 2) HYI_PV_NR(F, FMT, 3) HYI_PV_NR(F, FMT, 4) \
    HYI_PV_NR(F, FMT, 5) HYI_PV_NR(F, FMT, 6)
HYI_PVS(f32, HYI_FLOAT_F32)
HYI_PVS(f16, HYI_FLOAT_F16)
HYI_PVS(bf16, HYI_FLOAT_BF16)
HYI_PVS(q8_0, HYI_FLOAT_Q8_0)

typedef void (*pv_fn)(const uint8_t *, size_t, int64_t, int64_t, const float *, int64_t, int64_t, float *, int64_t);
#define HYI_PV_ROW(F, NR) { pv_##F##_##NR##_1, pv_##F##_##NR##_2, pv_##F##_##NR##_3, pv_##F##_##NR##_4 }
#define HYI_PV_FMT(F) { HYI_PV_ROW(F, 1), HYI_PV_ROW(F, 2), HYI_PV_ROW(F, 3), HYI_PV_ROW(F, 4), HYI_PV_ROW(F, 5), \
                        HYI_PV_ROW(F, 6) }
static const pv_fn k_pv[4][PV_R][PV_V] = { HYI_PV_FMT(f32), HYI_PV_FMT(f16), HYI_PV_FMT(bf16), HYI_PV_FMT(q8_0) };

bool hyi_attn_pv(int fmt, const void *v, size_t row_bytes, const float *p, int64_t ldp, int64_t m, int64_t n,
                 int64_t hd, float *acc, int64_t ldacc) {
    if (!hyi_cpu_has_avx512f() || !format_ok(fmt, hd)) return false;
    for (int64_t d0 = 0; d0 < hd; d0 += 16 * PV_V) {
        int64_t nv = (hd - d0 + 15) / 16;
        if (nv > PV_V) nv = PV_V;
        for (int64_t i = 0; i < m; i += PV_R) {
            int64_t nr = m - i < PV_R ? m - i : PV_R;
            k_pv[fmt][nr - 1][nv - 1]((const uint8_t *)v, row_bytes, d0, hd, p + i * ldp, ldp, n, acc + i * ldacc, ldacc);
        }
    }
    return true;
}

#else
bool hyi_gemm_float(int fmt, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                    int64_t t, int64_t k, float *y, int64_t ldy) {
    (void)fmt; (void)w; (void)row_bytes; (void)r0; (void)r1; (void)x; (void)ldx; (void)t; (void)k; (void)y; (void)ldy;
    return false;
}
bool hyi_attn_pv(int fmt, const void *v, size_t row_bytes, const float *p, int64_t ldp, int64_t m, int64_t n,
                 int64_t hd, float *acc, int64_t ldacc) {
    (void)fmt; (void)v; (void)row_bytes; (void)p; (void)ldp; (void)m; (void)n; (void)hd; (void)acc; (void)ldacc;
    return false;
}
#endif
