/* Integer GEMM for block-quantized weights (prefill): Y[i, r] = sum over blocks of dW·dX·(int dot) for
 * t tokens i and weight rows r (block layouts in Sources/HunyuanCore/Quantization.swift; activations
 * quantized like hyi_quantize_act_q8, one row of ceil(cols/32) int8 blocks per token).
 *
 * Scheme (SIMD paths): the weight rows are taken 16 at a time (a "panel") and repacked, a chunk of up
 * to GEMM_KC blocks at a time, into a small stack buffer where each 32-weight block becomes 8 groups of
 * 16 rows × 4 bytes: vector lane j holds 4 consecutive weights of row j. One VPDPBUSD of such a vector
 * with 4 activation bytes of one token broadcast to every lane advances 16 row dots at once, so after
 * the 8 groups of a block each int32 lane holds the complete block dot of its row: no horizontal
 * reductions, the per-block scales (16 row scales × the token's scale) are applied with one multiply and
 * one FMA per (16 rows, token, block), and a token's 16 accumulators are 16 consecutive outputs of Y.
 * The repacked panel (≤ 32 KB) is reused from L1 by every token; the activation bytes of a token by
 * all 16 rows. Weights are read once per call. Weights stored as u8 for VPDPBUSD: q4 nibbles are
 * 0..15 (w = d·(n − 8) subtracts 8·Σx, Σx kept per block by the quantizer); q8_0 codes get +128
 * (xor 0x80) and subtract 128·Σx. q4_k's min term dmin·mn·Σx is one more FMA per block.
 * Cost model (Zen 5, one core): a token costs ~1.3 ns per 16 rows × 32 columns (near the VPDPBUSD
 * peak), repacking ~12 ns once per call, so the GEMM beats t matvecs from t = 2 on. Activations of all
 * t tokens are read from L2/L3 for every panel; no token blocking is needed (measured: the same GOP/s
 * at t = 128 and t = 2048 with 2048 columns).
 *
 * Paths: AVX-512 VNNI (zmm, 16 rows × 8 tokens register tile), AVX2 (ymm VPMADDUBSW/VPMADDWD, 8 rows ×
 * 4 tokens, the haswell baseline), scalar (reference, portable). Results of the paths agree up to
 * float summation order. */
#include "hy_kernels.h"
#include "block_formats.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { G_Q8_0_BYTES = 34, G_Q4_0_BYTES = 18, G_Q4_K_BYTES = 148 };
enum { GEMM_ROWS = 16, GEMM_KC = 64 /* blocks per repacked chunk; a multiple of 8 (q4_k) */ };


/* ---- activation quantization (t rows) ---- */

#if defined(__x86_64__) && defined(__AVX2__)
/* One full block of 32 floats; bit-identical to hyi_quantize_act_q8 (same max, same float products,
 * round-to-nearest-even conversion, and |x·inv| ≤ 127 so the packs' saturation never engages). */
static inline void quant_block_avx2(const float *x, int8_t *q, float *d, int32_t *s) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
           v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                             _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float inv = amax > 0 ? 127.0f / amax : 0;
    *d = amax / 127.0f;
    __m256 vi = _mm256_set1_ps(inv);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vi)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vi));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vi)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vi));
    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    *s = _mm_cvtsi128_si32(s4);
    /* packs interleave 128-bit lanes: dwords end up in order 0,4,1,5,2,6,3,7; permute back. */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
}
#endif

void hyi_quantize_rows_q8(const float *x, int64_t t, int64_t n, int64_t ldx, int8_t *q, float *d, int32_t *s) {
    int64_t nb = (n + 31) / 32;
    for (int64_t i = 0; i < t; i++) {
        const float *xi = x + i * ldx;
        int8_t *qi = q + i * nb * 32;
        float *di = d + i * nb;
        int32_t *si = s + i * nb;
        int64_t b = 0;
#if defined(__x86_64__) && defined(__AVX2__)
        for (; b < n / 32; b++) quant_block_avx2(xi + 32 * b, qi + 32 * b, di + b, si + b);
#endif
        if (b < nb) hyi_quantize_act_q8(xi + 32 * b, n - 32 * b, qi + 32 * b, di + b, si + b);
    }
}

/* ---- scalar path (reference) ---- */

/* Row r's block b decoded to integer codes c[32], its scale and min: w = scale·c − min. */
static void decode_block(int fmt, const uint8_t *row, int64_t b, int16_t *c, float *scale, float *min) {
    if (fmt == HYI_Q8_0) {
        const uint8_t *blk = row + b * G_Q8_0_BYTES;
        for (int i = 0; i < 32; i++) c[i] = (int8_t)blk[2 + i];
        *scale = hyi_f16(hyi_ld16(blk)); *min = 0;
    } else if (fmt == HYI_Q4_0) {
        const uint8_t *blk = row + b * G_Q4_0_BYTES;
        for (int i = 0; i < 16; i++) { c[i] = (int16_t)((blk[2 + i] & 0x0F) - 8); c[i + 16] = (int16_t)((blk[2 + i] >> 4) - 8); }
        *scale = hyi_f16(hyi_ld16(blk)); *min = 0;
    } else {
        const uint8_t *sb = row + (b / 8) * G_Q4_K_BYTES;
        int j = (int)(b % 8);
        const uint8_t *qs = sb + 20 + 16 * j;
        for (int i = 0; i < 16; i++) { c[i] = qs[i] & 0x0F; c[i + 16] = qs[i] >> 4; }
        *scale = hyi_f16(hyi_ld16(sb)) * (float)sb[4 + j];
        *min = hyi_f16(hyi_ld16(sb + 2)) * (float)sb[12 + j];
    }
}

/* Rows in tiles of 4 over all tokens: a block's codes are decoded once per call and reused by every
 * token. Y is accumulated block by block (first block stores). */
static void gemm_scalar(int fmt, const uint8_t *w, size_t row_bytes, int64_t r0, int64_t r1, const int8_t *xq,
                        const float *xd, const int32_t *xs, int64_t nb, int64_t t, float *y, int64_t ldy) {
    int16_t c[4][32];
    float sc[4], mn[4];
    for (int64_t r = r0; r < r1; r += 4) {
        int nr = r1 - r < 4 ? (int)(r1 - r) : 4;
        for (int64_t i = 0; i < t; i++) for (int k = 0; k < nr; k++) y[i * ldy + r + k] = 0;
        for (int64_t b = 0; b < nb; b++) {
            for (int k = 0; k < nr; k++) decode_block(fmt, w + (size_t)(r + k) * row_bytes, b, c[k], &sc[k], &mn[k]);
            for (int64_t i = 0; i < t; i++) {
                const int8_t *xb = xq + (i * nb + b) * 32;
                float dx = xd[i * nb + b], sx = (float)xs[i * nb + b];
                for (int k = 0; k < nr; k++) {
                    int32_t acc = 0;
                    for (int e = 0; e < 32; e++) acc += c[k][e] * xb[e];
                    y[i * ldy + r + k] += dx * (sc[k] * (float)acc - mn[k] * sx);
                }
            }
        }
    }
}

#if defined(__x86_64__) && defined(__AVX2__)
/* ---- panel repacking ----
 * Panel chunk of nbk blocks: bytes[nbk][8 groups][16 rows][4], scale[nbk][16], min[nbk][16] (q4_k).
 * Rows of the panel past the matrix (nr < 16) repeat the last row; their outputs are never stored.
 * q8_0 codes are stored + 128 for the VNNI path and as they are for the AVX2 path. */
static inline int32_t g_ld32(const void *p) { int32_t v; memcpy(&v, p, 4); return v; }


/* In-register transpose of 8 rows × 8 dwords: out[k] = dword k of rows 0..7. */
static inline void transpose8x8(__m256i r[8]) {
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20); r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20); r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20); r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20); r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* 32 unsigned nibbles of a 16-byte group in element order (low nibbles 0..15, high 16..31). */
static inline __m256i g_nibbles32(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

/* q4_k: the 8 sub-block scales d·sc[j] and mins dmin·mn[j] of super-block `sbi` for the panel's 16
 * rows, stored as psc[16·j + row], pmn[16·j + row] (one row's 8 values per vector, then transposed). */
static void q4k_scales(const uint8_t *const rows[GEMM_ROWS], int64_t sbi, float *psc, float *pmn) {
    for (int part = 0; part < 2; part++) {
        __m256i v[GEMM_ROWS];
        for (int r = 0; r < GEMM_ROWS; r++) {
            const uint8_t *sb = rows[r] + sbi * G_Q4_K_BYTES;
            __m256 d = _mm256_set1_ps(hyi_f16(hyi_ld16(sb + 2 * part)));
            __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(sb + 4 + 8 * part))));
            v[r] = _mm256_castps_si256(_mm256_mul_ps(d, c));
        }
        transpose8x8(v);
        transpose8x8(v + 8);
        float *dst = part ? pmn : psc;
        for (int j = 0; j < 8; j++) {
            _mm256_store_si256((__m256i *)(dst + 16 * j), v[j]);
            _mm256_store_si256((__m256i *)(dst + 16 * j + 8), v[8 + j]);
        }
    }
}

/* f16 scales at byte offset `off` of 16 rows -> 16 floats. */
static inline void f16_scales16(const uint8_t *const rows[GEMM_ROWS], int64_t off, float *dst) {
    uint16_t h[GEMM_ROWS];
    for (int j = 0; j < GEMM_ROWS; j++) h[j] = hyi_ld16(rows[j] + off);
    _mm256_store_ps(dst, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)));
    _mm256_store_ps(dst + 8, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + 8))));
}

static void panel_rows(const uint8_t *w, size_t row_bytes, int64_t p0, int nr, const uint8_t *rows[GEMM_ROWS]) {
    for (int j = 0; j < GEMM_ROWS; j++) rows[j] = w + (size_t)(p0 + (j < nr ? j : nr - 1)) * row_bytes;
}

/* Byte offset of block gb's 32 codes (q8_0) or 16 nibble bytes (q4) within a row. */
static inline int64_t code_offset(int fmt, int64_t gb) {
    if (fmt == HYI_Q8_0) return gb * G_Q8_0_BYTES + 2;
    if (fmt == HYI_Q4_0) return gb * G_Q4_0_BYTES + 2;
    return (gb / 8) * G_Q4_K_BYTES + 20 + 16 * (gb % 8);
}

/* Block scales (and q4_k mins) of the chunk [kb, kb+nbk); psc/pmn hold GEMM_KC·16 floats. */
static void repack_scales(int fmt, const uint8_t *const rows[GEMM_ROWS], int64_t kb, int64_t nbk, float *psc,
                          float *pmn) {
    if (fmt == HYI_Q4_K) {
        for (int64_t b = 0; b < nbk; b += 8) q4k_scales(rows, (kb + b) / 8, psc + 16 * b, pmn + 16 * b);
        return;
    }
    int64_t bb = fmt == HYI_Q8_0 ? G_Q8_0_BYTES : G_Q4_0_BYTES;
    for (int64_t b = 0; b < nbk; b++) f16_scales16(rows, (kb + b) * bb, psc + 16 * b);
}

/* AVX2 repack (the AVX2 path: q8_0 codes stay signed). */
static void repack_panel(int fmt, const uint8_t *w, size_t row_bytes, int64_t p0, int nr, int64_t kb,
                         int64_t nbk, uint8_t *pw, float *psc, float *pmn) {
    const uint8_t *rows[GEMM_ROWS];
    panel_rows(w, row_bytes, p0, nr, rows);
    repack_scales(fmt, rows, kb, nbk, psc, pmn);
    for (int64_t b = 0; b < nbk; b++) {
        int64_t off = code_offset(fmt, kb + b);
        __m256i v[GEMM_ROWS];
        for (int j = 0; j < GEMM_ROWS; j++)
            v[j] = fmt == HYI_Q8_0 ? _mm256_loadu_si256((const __m256i *)(rows[j] + off)) : g_nibbles32(rows[j] + off);
        transpose8x8(v);
        transpose8x8(v + 8);
        uint8_t *dst = pw + b * 512;
        for (int k = 0; k < 8; k++) {
            _mm256_store_si256((__m256i *)(dst + 64 * k), v[k]);
            _mm256_store_si256((__m256i *)(dst + 64 * k + 32), v[8 + k]);
        }
    }
}

#define G_INLINE static inline __attribute__((always_inline))
#define G_ATTR_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* Scales (and q4_k mins) of block gb of the panel's 16 rows with AVX-512 gathers of one dword at the
 * same offset of every row (vidx: row offsets from rows0); stored at psc/pmn + 16·b. q4_k: called at
 * a super-block's first block, fills its 8 blocks. Same products as the AVX2 version. */
G_ATTR_VNNI G_INLINE void scales_512(int fmt, const uint8_t *rows0, __m512i vidx, int64_t gb, int64_t b, float *psc,
                                     float *pmn) {
    if (fmt == HYI_Q4_K) {
        const __m512i byte = _mm512_set1_epi32(0xFF);
        const uint8_t *sb = rows0 + (gb / 8) * G_Q4_K_BYTES;
        __m512i dd = _mm512_i32gather_epi32(vidx, (const void *)sb, 1);
        __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
        __m512 dm = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
        for (int h = 0; h < 4; h++) {  /* sc[0..3], sc[4..7], mn[0..3], mn[4..7] */
            __m512i g = _mm512_i32gather_epi32(vidx, (const void *)(sb + 4 + 4 * h), 1);
            __m512 f = h < 2 ? d : dm;
            float *dst = (h < 2 ? psc : pmn) + 16 * (b + 4 * (h & 1));
            for (int j = 0; j < 4; j++) {
                __m512 c = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(g, 8 * j), byte));
                _mm512_store_ps(dst + 16 * j, _mm512_mul_ps(f, c));
            }
        }
        return;
    }
    int64_t bb = fmt == HYI_Q8_0 ? G_Q8_0_BYTES : G_Q4_0_BYTES;
    __m512i g = _mm512_i32gather_epi32(vidx, (const void *)(rows0 + gb * bb), 1);
    _mm512_store_ps(psc + 16 * b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)));
}

/* AVX-512 repack (the VNNI path: q8_0 codes + 128).
 * q8_0: a zmm holds rows j and j+8 (one per 256-bit half), so one 8×8 dword transpose (unpack 32, unpack
 * 64, cross-lane permute) handles all 16 rows.
 * q4: the packed nibble bytes (16 rows × 4 dwords) are transposed inside 128-bit lanes (vector m's lane
 * L = row 4L + m), then split: low nibbles are dwords 0-3 of the block, high nibbles dwords 4-7.
 * The scale gathers come after a block's code loads, which have brought its lines into L1. */
G_ATTR_VNNI static void repack_panel_512(int fmt, const uint8_t *w, size_t row_bytes, int64_t p0, int nr, int64_t kb,
                                         int64_t nbk, uint8_t *pw, float *psc, float *pmn) {
    const uint8_t *rows[GEMM_ROWS];
    panel_rows(w, row_bytes, p0, nr, rows);
    /* Gathers take int32 row offsets (rows over 128 MB: the AVX2 scale code). */
    int gather = row_bytes <= (size_t)INT32_MAX / GEMM_ROWS;
    int32_t idx[GEMM_ROWS];
    for (int j = 0; j < GEMM_ROWS; j++) idx[j] = gather ? (int32_t)(rows[j] - rows[0]) : 0;
    const __m512i vidx = _mm512_loadu_si512((const void *)idx);
    if (!gather) repack_scales(fmt, rows, kb, nbk, psc, pmn);
    const __m512i flip = _mm512_set1_epi8((char)0x80), low4 = _mm512_set1_epi8(0x0F);
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int64_t b = 0; b < nbk; b++) {
        int64_t off = code_offset(fmt, kb + b);
        uint8_t *dst = pw + b * 512;
        if (fmt == HYI_Q8_0) {
            __m512i z[8];
            for (int j = 0; j < 8; j++) {
                __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(rows[j] + off))),
                                               _mm256_loadu_si256((const __m256i *)(rows[j + 8] + off)), 1);
                z[j] = _mm512_xor_si512(v, flip);
            }
            if (gather) scales_512(fmt, rows[0], vidx, kb + b, b, psc, pmn);
            __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
            __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
            __m512i t4 = _mm512_unpacklo_epi32(z[4], z[5]), t5 = _mm512_unpackhi_epi32(z[4], z[5]);
            __m512i t6 = _mm512_unpacklo_epi32(z[6], z[7]), t7 = _mm512_unpackhi_epi32(z[6], z[7]);
            __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
            __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
            __m512i u4 = _mm512_unpacklo_epi64(t4, t6), u5 = _mm512_unpackhi_epi64(t4, t6);
            __m512i u6 = _mm512_unpacklo_epi64(t5, t7), u7 = _mm512_unpackhi_epi64(t5, t7);
            _mm512_store_si512((void *)(dst + 0), _mm512_permutex2var_epi64(u0, lo, u4));
            _mm512_store_si512((void *)(dst + 256), _mm512_permutex2var_epi64(u0, hi, u4));
            _mm512_store_si512((void *)(dst + 64), _mm512_permutex2var_epi64(u1, lo, u5));
            _mm512_store_si512((void *)(dst + 320), _mm512_permutex2var_epi64(u1, hi, u5));
            _mm512_store_si512((void *)(dst + 128), _mm512_permutex2var_epi64(u2, lo, u6));
            _mm512_store_si512((void *)(dst + 384), _mm512_permutex2var_epi64(u2, hi, u6));
            _mm512_store_si512((void *)(dst + 192), _mm512_permutex2var_epi64(u3, lo, u7));
            _mm512_store_si512((void *)(dst + 448), _mm512_permutex2var_epi64(u3, hi, u7));
        } else {
            __m512i v[4];
            for (int m = 0; m < 4; m++) {
                __m512i a = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rows[m] + off)));
                a = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(rows[4 + m] + off)), 1);
                a = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(rows[8 + m] + off)), 2);
                v[m] = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(rows[12 + m] + off)), 3);
            }
            if (gather && (fmt == HYI_Q4_0 || (kb + b) % 8 == 0)) scales_512(fmt, rows[0], vidx, kb + b, b, psc, pmn);
            __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]), t1 = _mm512_unpackhi_epi32(v[0], v[1]);
            __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]), t3 = _mm512_unpackhi_epi32(v[2], v[3]);
            __m512i o[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2), _mm512_unpacklo_epi64(t1, t3),
                            _mm512_unpackhi_epi64(t1, t3)};
            for (int k = 0; k < 4; k++) {
                _mm512_store_si512((void *)(dst + 64 * k), _mm512_and_si512(o[k], low4));
                _mm512_store_si512((void *)(dst + 64 * (k + 4)), _mm512_and_si512(_mm512_srli_epi16(o[k], 4), low4));
            }
        }
    }
}

/* ---- AVX-512 VNNI register tile: 16 rows × T tokens over nbk blocks ----
 * xq/xd/xs point at the chunk's first block of the tile's first token; token rows are ldq bytes and
 * lds blocks apart. acc = 0 (first chunk) or the current Y (later chunks). */
G_ATTR_VNNI G_INLINE void tile_vnni(const int fmt, const int T, const uint8_t *pw, const float *psc,
                                    const float *pmn, int64_t nbk, const int8_t *xq, int64_t ldq, const float *xd,
                                    const int32_t *xs, int64_t lds, float *y, int64_t ldy, int first, __mmask16 m) {
    __m512 acc[8];
    for (int i = 0; i < T; i++) acc[i] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, y + i * ldy);
    /* q4_k: the min term's dX·Σx per (token, block) as an array, broadcast straight from memory in the
     * block loop (measured ~4 % faster than converting and multiplying it there; the int offsets of
     * q8_0/q4_0 are better computed in place). */
    _Alignas(64) float xm[8][GEMM_KC];
    if (fmt == HYI_Q4_K)
        for (int i = 0; i < T; i++)
            for (int64_t b = 0; b < nbk; b++) xm[i][b] = xd[i * lds + b] * (float)xs[i * lds + b];
    for (int64_t b = 0; b < nbk; b++) {
        __m512i s[8];
        for (int i = 0; i < T; i++) {
            if (fmt == HYI_Q8_0) s[i] = _mm512_set1_epi32(-128 * xs[i * lds + b]);
            else if (fmt == HYI_Q4_0) s[i] = _mm512_set1_epi32(-8 * xs[i * lds + b]);
            else s[i] = _mm512_setzero_si512();
        }
        const uint8_t *wb = pw + b * 512;
        const int8_t *xb = xq + b * 32;
        for (int k = 0; k < 8; k++) {
            __m512i wv = _mm512_load_si512((const void *)(wb + 64 * k));
            for (int i = 0; i < T; i++)
                s[i] = _mm512_dpbusd_epi32(s[i], wv, _mm512_set1_epi32(g_ld32(xb + i * ldq + 4 * k)));
        }
        __m512 sc = _mm512_loadu_ps(psc + 16 * b);
        for (int i = 0; i < T; i++)
            acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s[i]), sc), _mm512_set1_ps(xd[i * lds + b]), acc[i]);
        if (fmt == HYI_Q4_K) {
            __m512 mn = _mm512_loadu_ps(pmn + 16 * b);
            for (int i = 0; i < T; i++)
                acc[i] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(xm[i][b]), acc[i]);
        }
    }
    for (int i = 0; i < T; i++) _mm512_mask_storeu_ps(y + i * ldy, m, acc[i]);
}

#define G_TT_VNNI 8
#define G_TILE_CASES(FN, FMT, ...)                                                                    \
    switch (T) {                                                                                     \
    case 8: FN(FMT, 8, __VA_ARGS__); break; case 7: FN(FMT, 7, __VA_ARGS__); break;                  \
    case 6: FN(FMT, 6, __VA_ARGS__); break; case 5: FN(FMT, 5, __VA_ARGS__); break;                  \
    case 4: FN(FMT, 4, __VA_ARGS__); break; case 3: FN(FMT, 3, __VA_ARGS__); break;                  \
    case 2: FN(FMT, 2, __VA_ARGS__); break; default: FN(FMT, 1, __VA_ARGS__); break;                 \
    }

G_ATTR_VNNI static void tiles_vnni(int fmt, const uint8_t *pw, const float *psc, const float *pmn, int64_t kb,
                                   int64_t nbk, const int8_t *xq, const float *xd, const int32_t *xs, int64_t nb,
                                   int64_t t, float *y, int64_t ldy, int first, __mmask16 m) {
    for (int64_t i0 = 0; i0 < t; i0 += G_TT_VNNI) {
        int T = t - i0 < G_TT_VNNI ? (int)(t - i0) : G_TT_VNNI;
        const int8_t *q = xq + i0 * nb * 32 + kb * 32;
        const float *d = xd + i0 * nb + kb;
        const int32_t *s = xs + i0 * nb + kb;
        float *yy = y + i0 * ldy;
        if (fmt == HYI_Q8_0) { G_TILE_CASES(tile_vnni, HYI_Q8_0, pw, psc, pmn, nbk, q, nb * 32, d, s, nb, yy, ldy, first, m) }
        else if (fmt == HYI_Q4_0) { G_TILE_CASES(tile_vnni, HYI_Q4_0, pw, psc, pmn, nbk, q, nb * 32, d, s, nb, yy, ldy, first, m) }
        else { G_TILE_CASES(tile_vnni, HYI_Q4_K, pw, psc, pmn, nbk, q, nb * 32, d, s, nb, yy, ldy, first, m) }
    }
}

/* ---- AVX2 register tile: 8 rows (one half of the panel) × T ≤ 4 tokens ----
 * q4 (u8 0..15 × s8): VPMADDUBSW pairs ≤ 2·15·127, so the 8 groups of a block add up in int16
 * (≤ 30480) before one VPMADDWD. q8_0 (signed codes): |w| × sign(x, w) per group, widened each time. */
G_INLINE void tile_avx2(const int fmt, const int T, const uint8_t *pw, const float *psc, const float *pmn,
                        int64_t nbk, const int8_t *xq, int64_t ldq, const float *xd, const int32_t *xs, int64_t lds,
                        float *y, int64_t ldy, int first, int nr) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int i = 0; i < T; i++) {
        if (first) acc[i] = _mm256_setzero_ps();
        else if (nr >= 8) acc[i] = _mm256_loadu_ps(y + i * ldy);
        else { float tmp[8] = {0}; memcpy(tmp, y + i * ldy, sizeof(float) * (size_t)nr); acc[i] = _mm256_loadu_ps(tmp); }
    }
    for (int64_t b = 0; b < nbk; b++) {
        const uint8_t *wb = pw + b * 512;
        const int8_t *xb = xq + b * 32;
        __m256i s[4];
        if (fmt == HYI_Q8_0) {
            for (int i = 0; i < T; i++) s[i] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                __m256i wv = _mm256_load_si256((const __m256i *)(wb + 64 * k)), wa = _mm256_abs_epi8(wv);
                for (int i = 0; i < T; i++) {
                    __m256i xv = _mm256_sign_epi8(_mm256_set1_epi32(g_ld32(xb + i * ldq + 4 * k)), wv);
                    s[i] = _mm256_add_epi32(s[i], _mm256_madd_epi16(_mm256_maddubs_epi16(wa, xv), ones));
                }
            }
        } else {
            __m256i h[4];
            for (int i = 0; i < T; i++) h[i] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                __m256i wv = _mm256_load_si256((const __m256i *)(wb + 64 * k));
                for (int i = 0; i < T; i++)
                    h[i] = _mm256_add_epi16(h[i], _mm256_maddubs_epi16(wv, _mm256_set1_epi32(g_ld32(xb + i * ldq + 4 * k))));
            }
            for (int i = 0; i < T; i++) {
                s[i] = _mm256_madd_epi16(h[i], ones);
                if (fmt == HYI_Q4_0) s[i] = _mm256_sub_epi32(s[i], _mm256_set1_epi32(8 * xs[i * lds + b]));
            }
        }
        __m256 sc = _mm256_loadu_ps(psc + 16 * b);
        for (int i = 0; i < T; i++)
            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s[i]), sc), _mm256_set1_ps(xd[i * lds + b]), acc[i]);
        if (fmt == HYI_Q4_K) {
            __m256 mn = _mm256_loadu_ps(pmn + 16 * b);
            for (int i = 0; i < T; i++)
                acc[i] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(xd[i * lds + b] * (float)xs[i * lds + b]), acc[i]);
        }
    }
    for (int i = 0; i < T; i++) {
        if (nr >= 8) _mm256_storeu_ps(y + i * ldy, acc[i]);
        else { float tmp[8]; _mm256_storeu_ps(tmp, acc[i]); memcpy(y + i * ldy, tmp, sizeof(float) * (size_t)nr); }
    }
}

#define G_TT_AVX2 4
#define G_TILE_CASES4(FN, FMT, ...)                                                                   \
    switch (T) {                                                                                     \
    case 4: FN(FMT, 4, __VA_ARGS__); break; case 3: FN(FMT, 3, __VA_ARGS__); break;                  \
    case 2: FN(FMT, 2, __VA_ARGS__); break; default: FN(FMT, 1, __VA_ARGS__); break;                 \
    }

static void tiles_avx2(int fmt, const uint8_t *pw, const float *psc, const float *pmn, int64_t kb, int64_t nbk,
                       const int8_t *xq, const float *xd, const int32_t *xs, int64_t nb, int64_t t, float *y,
                       int64_t ldy, int first, int nr) {
    for (int half = 0; half < 2 && half * 8 < nr; half++) {
        const uint8_t *hw = pw + 32 * half;
        const float *hs = psc + 8 * half, *hm = pmn + 8 * half;
        int hn = nr - 8 * half;
        for (int64_t i0 = 0; i0 < t; i0 += G_TT_AVX2) {
            int T = t - i0 < G_TT_AVX2 ? (int)(t - i0) : G_TT_AVX2;
            const int8_t *q = xq + i0 * nb * 32 + kb * 32;
            const float *d = xd + i0 * nb + kb;
            const int32_t *s = xs + i0 * nb + kb;
            float *yy = y + i0 * ldy + 8 * half;
            if (fmt == HYI_Q8_0) { G_TILE_CASES4(tile_avx2, HYI_Q8_0, hw, hs, hm, nbk, q, nb * 32, d, s, nb, yy, ldy, first, hn) }
            else if (fmt == HYI_Q4_0) { G_TILE_CASES4(tile_avx2, HYI_Q4_0, hw, hs, hm, nbk, q, nb * 32, d, s, nb, yy, ldy, first, hn) }
            else { G_TILE_CASES4(tile_avx2, HYI_Q4_K, hw, hs, hm, nbk, q, nb * 32, d, s, nb, yy, ldy, first, hn) }
        }
    }
}
#endif

void hyi_gemm_q(int fmt, int path, const void *wv, size_t row_bytes, int64_t r0, int64_t r1, const int8_t *xq,
                const float *xd, const int32_t *xs, int64_t nb, int64_t t, float *y, int64_t ldy) {
    const uint8_t *w = (const uint8_t *)wv;
    if (r1 <= r0 || t <= 0 || nb <= 0) return;
    if (fmt != HYI_Q8_0 && fmt != HYI_Q4_0 && fmt != HYI_Q4_K) return;
#if defined(__x86_64__) && defined(__AVX2__)
    if (path == HYI_PATH_VNNI || path == HYI_PATH_AVX2) {
        _Alignas(64) uint8_t pw[GEMM_KC * 512];
        _Alignas(64) float psc[GEMM_KC * GEMM_ROWS], pmn[GEMM_KC * GEMM_ROWS];
        for (int64_t p0 = r0; p0 < r1; p0 += GEMM_ROWS) {
            int nr = r1 - p0 < GEMM_ROWS ? (int)(r1 - p0) : GEMM_ROWS;
            for (int64_t kb = 0; kb < nb; kb += GEMM_KC) {
                int64_t nbk = nb - kb < GEMM_KC ? nb - kb : GEMM_KC;
                if (path == HYI_PATH_VNNI) {
                    repack_panel_512(fmt, w, row_bytes, p0, nr, kb, nbk, pw, psc, pmn);
                    tiles_vnni(fmt, pw, psc, pmn, kb, nbk, xq, xd, xs, nb, t, y + p0, ldy, kb == 0,
                               (__mmask16)((1u << nr) - 1));
                } else {
                    repack_panel(fmt, w, row_bytes, p0, nr, kb, nbk, pw, psc, pmn);
                    tiles_avx2(fmt, pw, psc, pmn, kb, nbk, xq, xd, xs, nb, t, y + p0, ldy, kb == 0, nr);
                }
            }
        }
        return;
    }
#endif
    (void)path;
    gemm_scalar(fmt, w, row_bytes, r0, r1, xq, xd, xs, nb, t, y, ldy);
}
