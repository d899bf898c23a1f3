/* Integer dot-product kernels for block-quantized weights (see Sources/HunyuanCore/Quantization.swift
 * for the block layouts). The activation is quantized to int8 in blocks of 32 (one float scale and the
 * int32 sum of the 32 codes per block); a weight row is a sequence of blocks covering ceil(cols/32)
 * activation blocks. Two paths: AVX2 (the haswell baseline this target is compiled for) and AVX-512
 * VNNI (256-bit VPDPBUSD), compiled with a target attribute and only called after the run-time CPU
 * check in CPUFeatures. Results of both paths are identical up to float summation order. */
#include "hunyuan_internal.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline float hyi_f16(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 0x400), (int)e - 25);
    return s ? -v : v;
#endif
}

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

static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

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
        acc = _mm256_fmadd_ps(_mm256_set1_ps(hyi_f16(ld16(w)) * d[b]), _mm256_cvtepi32_ps(p), acc);     \
    }                                                                                                   \
    return hsum256(acc);                                                                                \
}                                                                                                       \
ATTR static float dot_q4_0_##SUFFIX(const uint8_t *w, const int8_t *q, const float *d, const int32_t *s, \
                                    int64_t nb) {                                                       \
    __m256 acc = _mm256_setzero_ps();                                                                   \
    float off = 0;                                                                                      \
    for (int64_t b = 0; b < nb; b++, w += Q4_0_BYTES) {                                                 \
        float sc = hyi_f16(ld16(w)) * d[b];                                                             \
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
        float dw = hyi_f16(ld16(w)), dmin = hyi_f16(ld16(w + 2));                                       \
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
ATTR static void matvec_##SUFFIX(int fmt, const uint8_t *w, size_t row_bytes, int64_t r0, int64_t r1,   \
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

HYI_DEFINE_ROW_KERNELS(avx2, HYI_DOT_U8S8_AVX2, )
HYI_DEFINE_ROW_KERNELS(vnni, HYI_DOT_U8S8_VNNI, __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))))
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
            scale = hyi_f16(ld16(blk));
        } else if (fmt == HYI_Q4_0) {
            const uint8_t *blk = w + b * Q4_0_BYTES;
            for (int i = 0; i < 16; i++) {
                isum += (blk[2 + i] & 0x0F) * q[32 * b + i] + (blk[2 + i] >> 4) * q[32 * b + 16 + i];
            }
            scale = hyi_f16(ld16(blk));
            off = scale * (float)(8 * s[b]);
        } else if (fmt == HYI_Q4_K) {
            const uint8_t *sb = w + (b / 8) * Q4_K_BYTES;
            int j = (int)(b % 8);
            const uint8_t *qs = sb + 20 + 16 * j;
            for (int i = 0; i < 16; i++) {
                isum += (qs[i] & 0x0F) * q[32 * b + i] + (qs[i] >> 4) * q[32 * b + 16 + i];
            }
            scale = hyi_f16(ld16(sb)) * (float)sb[4 + j];
            off = hyi_f16(ld16(sb + 2)) * (float)sb[12 + j] * (float)s[b];
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
