/* Integer dot-product kernels for block-quantized weights (see Sources/HunyuanCore/Quantization.swift
 * for the block layouts). The activation is quantized to int8 in blocks of 32 (one float scale and the
 * int32 sum of the 32 codes per block); a weight row is a sequence of blocks covering ceil(cols/32)
 * activation blocks. Two paths: AVX2 (the haswell baseline this target is compiled for) and AVX-512
 * VNNI (256-bit VPDPBUSD), compiled with a target attribute and only called after the run-time CPU
 * check in CPUFeatures. Results of both paths are identical up to float summation order. */
#include "hy_kernels.h"
#include "block_formats.h"

#pragma GCC diagnostic ignored "-Wunused-function"

#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif


void hyi_quantize_act_q8(const float *x, int64_t n, int8_t *q, float *d, int32_t *s) {
    int64_t nb = (n + 31) / 32;
    for (int64_t b = 0; b < nb; b++) {
        float amax = 0;
        int64_t lo = b * 32;
        for (int i = 0; i < 32; i++) {
            float v = lo + i < n ? fabsf(x[lo + i]) : 0;
            if (v > amax) amax = v;
        }
        float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            float v = lo + i < n ? x[lo + i] * inv : 0;
            int c = (int)lrintf(v);
            c = c > 127 ? 127 : (c < -127 ? -127 : c);
            q[lo + i] = (int8_t)c;
            sum += c;
        }
        d[b] = scale;
        s[b] = sum;
    }
}

/* ---- block layouts (packed, little-endian) ---- */
enum { Q8_0_BYTES = 34, Q4_0_BYTES = 18, Q4_K_BYTES = 148 };


#if defined(__x86_64__)
static inline float hsum256(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* 32 unsigned nibbles of a 16-byte group: low nibbles are elements 0..15, high nibbles 16..31. */
static inline __m256i nibbles32(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* The per-path integer primitive: sum over 32 lanes of u8 a × s8 b, as 8 int32 partial sums. */
#define HYI_DOT_U8S8_AVX2(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16((a), (b)), _mm256_set1_epi16(1))
#define HYI_DOT_U8S8_VNNI(a, b) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (a), (b))

/* One generic row kernel per format, instantiated for both paths through the DOT macro. */
#define HYI_DEFINE_ROW_KERNELS(SUFFIX, DOT, ATTR)                                                      \
ATTR static float dot_q8_0_##SUFFIX(const uint8_t *w, const int8_t *q, const float *d, int64_t nb) {   \
    __m256 acc = _mm256_setzero_ps();                                                                   \
    for (int64_t b = 0; b < nb; b++, w += Q8_0_BYTES) {                                                 \
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));                                      \
        __m256i xq = _mm256_loadu_si256((const __m256i *)(q + 32 * b));                                 \
        __m256i p = DOT(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));                            \
        acc = _mm256_fmadd_ps(_mm256_set1_ps(hyi_f16(hyi_ld16(w)) * d[b]), _mm256_cvtepi32_ps(p), acc);     \
    }                                                                                                   \
    return hsum256(acc);                                                                                \
}                                                                                                       \
ATTR static float dot_q4_0_##SUFFIX(const uint8_t *w, const int8_t *q, const float *d, const int32_t *s, \
                                    int64_t nb) {                                                       \
    __m256 acc = _mm256_setzero_ps();                                                                   \
    float off = 0;                                                                                      \
    for (int64_t b = 0; b < nb; b++, w += Q4_0_BYTES) {                                                 \
        float sc = hyi_f16(hyi_ld16(w)) * d[b];                                                             \
        __m256i p = DOT(nibbles32(w + 2), _mm256_loadu_si256((const __m256i *)(q + 32 * b)));           \
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sc), _mm256_cvtepi32_ps(p), acc);                          \
        off += sc * (float)(8 * s[b]);                                                                  \
    }                                                                                                   \
    return hsum256(acc) - off;                                                                          \
}                                                                                                       \
ATTR static float dot_q4_k_##SUFFIX(const uint8_t *w, const int8_t *q, const float *d, const int32_t *s, \
                                    int64_t nb) {                                                       \
    __m256 acc = _mm256_setzero_ps();                                                                   \
    float off = 0;                                                                                      \
    for (int64_t b0 = 0; b0 < nb; b0 += 8, w += Q4_K_BYTES) {                                           \
        float dw = hyi_f16(hyi_ld16(w)), dmin = hyi_f16(hyi_ld16(w + 2));                                       \
        const uint8_t *sc = w + 4, *mn = w + 12, *qs = w + 20;                                          \
        int64_t nsub = nb - b0 < 8 ? nb - b0 : 8;                                                       \
        for (int64_t j = 0; j < nsub; j++) {                                                            \
            int64_t b = b0 + j;                                                                         \
            __m256i p = DOT(nibbles32(qs + 16 * j), _mm256_loadu_si256((const __m256i *)(q + 32 * b))); \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * (float)sc[j] * d[b]), _mm256_cvtepi32_ps(p), acc); \
            off += dmin * (float)mn[j] * d[b] * (float)s[b];                                            \
        }                                                                                               \
    }                                                                                                   \
    return hsum256(acc) - off;                                                                          \
}                                                                                                       \
ATTR __attribute__((unused)) static void matvec_##SUFFIX(int fmt, const uint8_t *w, size_t row_bytes, int64_t r0, int64_t r1,   \
                                 const int8_t *q, const float *d, const int32_t *s, int64_t nb, float *y) { \
    for (int64_t r = r0; r < r1; r++) {                                                                 \
        const uint8_t *row = w + (size_t)r * row_bytes;                                                 \
        switch (fmt) {                                                                                  \
        case HYI_Q8_0: y[r] = dot_q8_0_##SUFFIX(row, q, d, nb); break;                                  \
        case HYI_Q4_0: y[r] = dot_q4_0_##SUFFIX(row, q, d, s, nb); break;                               \
        case HYI_Q4_K: y[r] = dot_q4_k_##SUFFIX(row, q, d, s, nb); break;                               \
        default: y[r] = 0; break;                                                                       \
        }                                                                                               \
    }                                                                                                   \
}

#define HYI_ATTR_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
HYI_DEFINE_ROW_KERNELS(avx2, HYI_DOT_U8S8_AVX2, )
HYI_DEFINE_ROW_KERNELS(vnni256, HYI_DOT_U8S8_VNNI, HYI_ATTR_VNNI)

/* AVX-512 VNNI: two 32-weight blocks per 512-bit VPDPBUSD; an odd last block goes to the 256-bit
 * kernel. Scales: lanes 0-7 belong to the first block, 8-15 to the second. */
HYI_ATTR_VNNI static inline __m512 scale2(float a, float b) {
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}
HYI_ATTR_VNNI static inline __m512i nibbles64(const uint8_t *p0, const uint8_t *p1) {
    __m128i t0 = _mm_loadu_si128((const __m128i *)p0), t1 = _mm_loadu_si128((const __m128i *)p1);
    __m256i v0 = _mm256_set_m128i(_mm_srli_epi16(t0, 4), t0), v1 = _mm256_set_m128i(_mm_srli_epi16(t1, 4), t1);
    return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1), _mm512_set1_epi8(0x0F));
}
HYI_ATTR_VNNI static float dot_q8_0_vnni(const uint8_t *w, const int8_t *q, const float *d, int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, w += 2 * Q8_0_BYTES) {
        __m512i wq = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 2))),
                                        _mm256_loadu_si256((const __m256i *)(w + Q8_0_BYTES + 2)), 1);
        __m512i xq = _mm512_loadu_si512((const void *)(q + 32 * b));
        __m512i sx = _mm512_mask_sub_epi8(xq, _mm512_movepi8_mask(wq), _mm512_setzero_si512(), xq);
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wq), sx);
        __m512 sc = scale2(hyi_f16(hyi_ld16(w)) * d[b], hyi_f16(hyi_ld16(w + Q8_0_BYTES)) * d[b + 1]);
        acc = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(p), acc);
    }
    float r = _mm512_reduce_add_ps(acc);
    if (b < nb) r += dot_q8_0_vnni256(w, q + 32 * b, d + b, nb - b);
    return r;
}
HYI_ATTR_VNNI static float dot_q4_0_vnni(const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                                         int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    float off = 0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, w += 2 * Q4_0_BYTES) {
        float s0 = hyi_f16(hyi_ld16(w)) * d[b], s1 = hyi_f16(hyi_ld16(w + Q4_0_BYTES)) * d[b + 1];
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles64(w + 2, w + Q4_0_BYTES + 2),
                                        _mm512_loadu_si512((const void *)(q + 32 * b)));
        acc = _mm512_fmadd_ps(scale2(s0, s1), _mm512_cvtepi32_ps(p), acc);
        off += s0 * (float)(8 * s[b]) + s1 * (float)(8 * s[b + 1]);
    }
    float r = _mm512_reduce_add_ps(acc) - off;
    if (b < nb) r += dot_q4_0_vnni256(w, q + 32 * b, d + b, s + b, nb - b);
    return r;
}
HYI_ATTR_VNNI static float dot_q4_k_vnni(const uint8_t *w, const int8_t *q, const float *d, const int32_t *s,
                                         int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    float off = 0;
    for (int64_t b0 = 0; b0 < nb; b0 += 8, w += Q4_K_BYTES) {
        float dw = hyi_f16(hyi_ld16(w)), dmin = hyi_f16(hyi_ld16(w + 2));
        const uint8_t *sc = w + 4, *mn = w + 12, *qs = w + 20;
        int64_t nsub = nb - b0 < 8 ? nb - b0 : 8, j = 0;
        for (; j + 2 <= nsub; j += 2) {
            int64_t b = b0 + j;
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles64(qs + 16 * j, qs + 16 * j + 16),
                                            _mm512_loadu_si512((const void *)(q + 32 * b)));
            __m512 scv = scale2(dw * (float)sc[j] * d[b], dw * (float)sc[j + 1] * d[b + 1]);
            acc = _mm512_fmadd_ps(scv, _mm512_cvtepi32_ps(p), acc);
            off += dmin * ((float)mn[j] * d[b] * (float)s[b] + (float)mn[j + 1] * d[b + 1] * (float)s[b + 1]);
        }
        if (j < nsub) {
            int64_t b = b0 + j;
            __m256i p = HYI_DOT_U8S8_VNNI(nibbles32(qs + 16 * j), _mm256_loadu_si256((const __m256i *)(q + 32 * b)));
            float part = hsum256(_mm256_cvtepi32_ps(p));
            off -= dw * (float)sc[j] * d[b] * part;
            off += dmin * (float)mn[j] * d[b] * (float)s[b];
        }
    }
    return _mm512_reduce_add_ps(acc) - off;
}
HYI_ATTR_VNNI static void matvec_vnni(int fmt, const uint8_t *w, size_t row_bytes, int64_t r0, int64_t r1,
                                      const int8_t *q, const float *d, const int32_t *s, int64_t nb, float *y) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w + (size_t)r * row_bytes;
        switch (fmt) {
        case HYI_Q8_0: y[r] = dot_q8_0_vnni(row, q, d, nb); break;
        case HYI_Q4_0: y[r] = dot_q4_0_vnni(row, q, d, s, nb); break;
        case HYI_Q4_K: y[r] = dot_q4_k_vnni(row, q, d, s, nb); break;
        default: y[r] = 0; break;
        }
    }
}
#endif

/* Portable scalar path (used when neither AVX2 path applies; also a reference). */
static float dot_scalar(int fmt, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s, int64_t nb) {
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        int32_t isum = 0;
        float scale = 0, off = 0;
        if (fmt == HYI_Q8_0) {
            const uint8_t *blk = w + b * Q8_0_BYTES;
            for (int i = 0; i < 32; i++) isum += (int8_t)blk[2 + i] * q[32 * b + i];
            scale = hyi_f16(hyi_ld16(blk));
        } else if (fmt == HYI_Q4_0) {
            const uint8_t *blk = w + b * Q4_0_BYTES;
            for (int i = 0; i < 16; i++) {
                isum += (blk[2 + i] & 0x0F) * q[32 * b + i] + (blk[2 + i] >> 4) * q[32 * b + 16 + i];
            }
            scale = hyi_f16(hyi_ld16(blk));
            off = scale * (float)(8 * s[b]);
        } else if (fmt == HYI_Q4_K) {
            const uint8_t *sb = w + (b / 8) * Q4_K_BYTES;
            int j = (int)(b % 8);
            const uint8_t *qs = sb + 20 + 16 * j;
            for (int i = 0; i < 16; i++) {
                isum += (qs[i] & 0x0F) * q[32 * b + i] + (qs[i] >> 4) * q[32 * b + 16 + i];
            }
            scale = hyi_f16(hyi_ld16(sb)) * (float)sb[4 + j];
            off = hyi_f16(hyi_ld16(sb + 2)) * (float)sb[12 + j] * (float)s[b];
        }
        acc += d[b] * (scale * (float)isum - off);
    }
    return acc;
}

void hyi_matvec_q(int fmt, int path, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
                  const int8_t *q, const float *d, const int32_t *s, int64_t nb, float *y) {
#if defined(__x86_64__)
    if (path == HYI_PATH_VNNI) { matvec_vnni(fmt, (const uint8_t *)w, row_bytes, r0, r1, q, d, s, nb, y); return; }
    if (path == HYI_PATH_AVX2) { matvec_avx2(fmt, (const uint8_t *)w, row_bytes, r0, r1, q, d, s, nb, y); return; }
#endif
    for (int64_t r = r0; r < r1; r++) {
        y[r] = dot_scalar(fmt, (const uint8_t *)w + (size_t)r * row_bytes, q, d, s, nb);
    }
}

/* Dequantizes one row of `cols` weights (block format `fmt`) into out[cols]. Plain loops over whole
 * blocks that the compiler vectorizes; a partial last block is written up to cols. */
void hyi_dequant_row(int fmt, const void *wv, int64_t cols, float *out) {
    const uint8_t *w = (const uint8_t *)wv;
    int64_t nb = (cols + 31) / 32;
    float tmp[32];
    for (int64_t b = 0; b < nb; b++) {
        float *dst = (b + 1) * 32 <= cols ? out + 32 * b : tmp;
        if (fmt == HYI_Q8_0) {
            const uint8_t *blk = w + b * Q8_0_BYTES;
            float d = hyi_f16(hyi_ld16(blk));
            const int8_t *qs = (const int8_t *)(blk + 2);
            for (int i = 0; i < 32; i++) dst[i] = d * (float)qs[i];
        } else if (fmt == HYI_Q4_0) {
            const uint8_t *blk = w + b * Q4_0_BYTES;
            float d = hyi_f16(hyi_ld16(blk));
            for (int i = 0; i < 16; i++) {
                dst[i] = d * (float)((int)(blk[2 + i] & 0x0F) - 8);
                dst[i + 16] = d * (float)((int)(blk[2 + i] >> 4) - 8);
            }
        } else if (fmt == HYI_Q4_K) {
            const uint8_t *sb = w + (b / 8) * Q4_K_BYTES;
            int j = (int)(b % 8);
            float d = hyi_f16(hyi_ld16(sb)) * (float)sb[4 + j], m = hyi_f16(hyi_ld16(sb + 2)) * (float)sb[12 + j];
            const uint8_t *qs = sb + 20 + 16 * j;
            for (int i = 0; i < 16; i++) {
                dst[i] = d * (float)(qs[i] & 0x0F) - m;
                dst[i + 16] = d * (float)(qs[i] >> 4) - m;
            }
        }
        if (dst == tmp) for (int64_t i = 0; i < cols - 32 * b; i++) out[32 * b + i] = tmp[i];
    }
}

/* FP8 E4M3 rows: y[r] = scale[r] * dot(e4m3 row r, x) for r in [r0, r1). A code's 7 magnitude bits
 * shifted into an f16 give the same value x 2^-8 (subnormals included), so codes widen with one
 * VCVTPH2PS; `scale` already holds the 256 factor (WeightMatrix.rowScale). x is fp32 (no int8). */
#if defined(__x86_64__)
/* AVX-512: 32 codes per step (two VCVTPH2PS of 16). */
HYI_ATTR_VNNI static void matvec_fp8_avx512(const uint8_t *w, size_t row_bytes, int64_t r0, int64_t r1,
                                            const float *x, int64_t cols, const float *scale, float *y) {
    const __m512i mag = _mm512_set1_epi16(0x3F80), sgn = _mm512_set1_epi16((short)0x8000);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w + (size_t)r * row_bytes;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= cols; i += 32) {
            __m512i b = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(row + i)));
            __m512i h = _mm512_or_si512(_mm512_and_si512(_mm512_slli_epi16(b, 8), sgn),
                                        _mm512_and_si512(_mm512_slli_epi16(b, 7), mag));
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), _mm512_loadu_ps(x + i + 16), a1);
        }
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; i < cols; i++) {
            uint16_t hh = (uint16_t)(((row[i] & 0x80) << 8) | ((row[i] & 0x7F) << 7));
            acc += hyi_f16(hh) * x[i];
        }
        y[r] = acc * scale[r];
    }
}
#endif

void hyi_matvec_fp8(int path, const void *wv, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t cols,
                    const float *scale, float *y) {
    const uint8_t *w = (const uint8_t *)wv;
#if defined(__x86_64__)
    if (path == HYI_PATH_VNNI) { matvec_fp8_avx512(w, row_bytes, r0, r1, x, cols, scale, y); return; }
#endif
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w + (size_t)r * row_bytes;
        int64_t i = 0;
        float acc = 0;
#if defined(__x86_64__) && defined(__AVX2__) && defined(__F16C__)
        if (path == HYI_PATH_SCALAR) goto tail;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        const __m256i mag = _mm256_set1_epi16(0x3F80), sgn = _mm256_set1_epi16((short)0x8000);
        for (; i + 16 <= cols; i += 16) {
            __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(row + i)));
            __m256i h = _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi16(b, 8), sgn),
                                        _mm256_and_si256(_mm256_slli_epi16(b, 7), mag));
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), _mm256_loadu_ps(x + i + 8), a1);
        }
        acc = hsum256(_mm256_add_ps(a0, a1));
    tail:
#endif
        for (; i < cols; i++) {
            uint16_t h = (uint16_t)(((row[i] & 0x80) << 8) | ((row[i] & 0x7F) << 7));
            acc += hyi_f16(h) * x[i];
        }
        y[r] = acc * scale[r];
    }
}
