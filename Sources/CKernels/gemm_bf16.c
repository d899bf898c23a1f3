/* bf16 × bf16 → fp32 GEMM with AVX512_BF16 dot products (vdpbf16ps), as an implicit GEMM so one kernel
 * serves linear layers and convolutions:
 *
 *   out[i·c_m + j·c_n] = bias[i] + Σ_t Σ_{e<seg} a[i·lda + t·seg + e] · b[col(j) + tap_off[t] + e]
 *   col(j) = (j / b_wo)·b_row + (j % b_wo)·b_col
 *
 * A linear layer is one tap (seg = in features, col(j) = j·in); a convolution reads a zero-padded
 * channel-last (H, W, C) copy of its input with one tap per kernel position (seg = C, weights reordered
 * to [out, kh, kw, C]), so no im2col buffer is built. Both operands are read with the reduction axis
 * contiguous; each 16-lane accumulator sums pairs of products and is reduced once per output.
 *
 * The register tile is 4 rows of A × 6 columns of B (24 zmm accumulators); columns are taken in blocks
 * whose activations stay in L2 while every row of the range passes over them. */
#include "hy_kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Portable forms, used where AVX512_BF16 is missing. */
static void to_bf16_scalar(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        union { float f; uint32_t u; } v = { x[i] };
        uint32_t u = v.u;
        if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) { y[i] = (uint16_t)((u >> 16) | 0x40); continue; }
        u += 0x7FFFu + ((u >> 16) & 1);
        y[i] = (uint16_t)(u >> 16);
    }
}

static float exp_shift_scalar(const float *x, int64_t n, int64_t n_pad, float shift, float scale, uint16_t *p) {
    float s = 0;
    for (int64_t i = 0; i < n_pad; i++) {
        float v = i < n ? expf((x[i] - shift) * scale) : 0.0f;
        s += v;
        to_bf16_scalar(&v, p + i, 1);
    }
    return s;
}

#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 10))
#include "avx512_common.h"

#define HYI_ATTR_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,f16c,fma")))

enum { BR = 4, BT = 6 };

#define HYI_BTILE(NR, NT)                                                                                  \
    HYI_ATTR_BF16 static void btile_##NR##_##NT(const hyi_bf16_gemm *p, const uint16_t *a,               \
                                                const uint16_t *const *bc, float *out, const float *bias) { \
        __m512 acc[NR][NT];                                                                                \
        _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++)                                              \
            _Pragma("GCC unroll 6") for (int c = 0; c < NT; c++) acc[r][c] = _mm512_setzero_ps();          \
        const int64_t seg = p->seg;                                                                        \
        for (int64_t t = 0; t < p->taps; t++) {                                                           \
            const uint16_t *at = a + t * seg;                                                              \
            const int64_t to = p->tap_off[t];                                                              \
            for (int64_t e = 0; e < seg; e += 32) {                                                        \
                __mmask32 m = seg - e >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (seg - e)) - 1);\
                __m512bh av[NR];                                                                           \
                _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++)                                      \
                    av[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, at + r * p->lda + e);                    \
                _Pragma("GCC unroll 6") for (int c = 0; c < NT; c++) {                                    \
                    __m512bh bv = (__m512bh)_mm512_maskz_loadu_epi16(m, bc[c] + to + e);                   \
                    _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++)                                  \
                        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], av[r], bv);                               \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
        _Pragma("GCC unroll 6") for (int c = 0; c < NT; c++) {                                            \
            __m512 z = _mm512_setzero_ps();                                                                \
            __m128 s = hyi_reduce4(acc[0][c], NR > 1 ? acc[NR > 1 ? 1 : 0][c] : z,                         \
                                   NR > 2 ? acc[NR > 2 ? 2 : 0][c] : z, NR > 3 ? acc[NR > 3 ? 3 : 0][c] : z); \
            float o[4];                                                                                    \
            _mm_storeu_ps(o, s);                                                                           \
            _Pragma("GCC unroll 4") for (int r = 0; r < NR; r++)                                          \
                out[r * p->c_m + c * p->c_n] = o[r] + (bias ? bias[r] : 0.0f);                             \
        }                                                                                                  \
    }

#define HYI_BTILES(NR) HYI_BTILE(NR, 1) HYI_BTILE(NR, 2) HYI_BTILE(NR, 3) HYI_BTILE(NR, 4) HYI_BTILE(NR, 5) HYI_BTILE(NR, 6)
HYI_BTILES(1)
HYI_BTILES(2)
HYI_BTILES(3)
HYI_BTILES(4)

typedef void (*btile_fn)(const hyi_bf16_gemm *, const uint16_t *, const uint16_t *const *, float *, const float *);
#define HYI_BROW(NR) { btile_##NR##_1, btile_##NR##_2, btile_##NR##_3, btile_##NR##_4, btile_##NR##_5, btile_##NR##_6 }
static const btile_fn k_btiles[BR][BT] = { HYI_BROW(1), HYI_BROW(2), HYI_BROW(3), HYI_BROW(4) };

HYI_ATTR_BF16 static void gemm_bf16_512(const hyi_bf16_gemm *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    /* Columns per block: their taps·seg values (2 bytes each) take ~384 KB of L2. */
    int64_t kk = p->taps * p->seg;
    int64_t cb = (384 * 1024 / 2) / (kk > 0 ? kk : 1) / BT * BT;
    cb = cb < BT ? BT : (cb > 64 * BT ? 64 * BT : cb);
    for (int64_t j0 = n0; j0 < n1; j0 += cb) {
        int64_t j1 = j0 + cb < n1 ? j0 + cb : n1;
        for (int64_t i = m0; i < m1; i += BR) {
            int64_t nr = m1 - i < BR ? m1 - i : BR;
            for (int64_t j = j0; j < j1; j += BT) {
                int64_t nt = j1 - j < BT ? j1 - j : BT;
                const uint16_t *bc[BT];
                for (int64_t c = 0; c < nt; c++) {
                    int64_t jj = j + c;
                    bc[c] = p->b + (jj / p->b_wo) * p->b_row + (jj % p->b_wo) * p->b_col;
                }
                k_btiles[nr - 1][nt - 1](p, p->a + i * p->lda, bc, p->c + i * p->c_m + j * p->c_n,
                                         p->bias ? p->bias + i : NULL);
            }
        }
    }
}

/* Outer-product form: C[m, n] (+)= A[m, 2·kp] · B with B packed in pairs, bp[q·ldbp + 2·j + e] =
 * B[2q + e, j]. A register tile of NR_ rows × 32 columns (2 zmm per row); each step broadcasts one pair of
 * A per row and loads two pairs-vectors of B. */
#define HYI_PTILE(NR_, NV)                                                                                 \
    HYI_ATTR_BF16 static void ptile_##NR_##_##NV(const uint16_t *a, int64_t lda, const uint16_t *bp,       \
                                                 int64_t ldbp, int64_t kp, float *c, int64_t ldc, int acc_in) { \
        __m512 acc[NR_][NV];                                                                               \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR_; r++)                                             \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                          \
                acc[r][v] = acc_in ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();          \
        for (int64_t q = 0; q < kp; q++) {                                                                \
            __m512bh bv[NV];                                                                               \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                          \
                bv[v] = (__m512bh)_mm512_loadu_si512((const void *)(bp + q * ldbp + 32 * v));              \
            _Pragma("GCC unroll 8") for (int r = 0; r < NR_; r++) {                                       \
                uint32_t pair;                                                                             \
                __builtin_memcpy(&pair, a + r * lda + 2 * q, 4);                                           \
                __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);                                      \
                _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                      \
                    acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);                                   \
            }                                                                                              \
        }                                                                                                  \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR_; r++)                                             \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]); \
    }
#define HYI_PTILES(NR_) HYI_PTILE(NR_, 1) HYI_PTILE(NR_, 2)
HYI_PTILES(1) HYI_PTILES(2) HYI_PTILES(3) HYI_PTILES(4) HYI_PTILES(5) HYI_PTILES(6) HYI_PTILES(7) HYI_PTILES(8)

typedef void (*ptile_fn)(const uint16_t *, int64_t, const uint16_t *, int64_t, int64_t, float *, int64_t, int);
static const ptile_fn k_ptiles[8][2] = {
    { ptile_1_1, ptile_1_2 }, { ptile_2_1, ptile_2_2 }, { ptile_3_1, ptile_3_2 }, { ptile_4_1, ptile_4_2 },
    { ptile_5_1, ptile_5_2 }, { ptile_6_1, ptile_6_2 }, { ptile_7_1, ptile_7_2 }, { ptile_8_1, ptile_8_2 } };

HYI_ATTR_BF16 static void gemm_bf16_packed_512(const uint16_t *a, int64_t lda, const uint16_t *bp, int64_t ldbp,
                                               int64_t kp, int64_t m, int64_t n, float *c, int64_t ldc, int acc_in) {
    for (int64_t j = 0; j < n; j += 32) {
        int nv = n - j >= 32 ? 2 : 1;
        for (int64_t i = 0; i < m; i += 8) {
            int64_t nr = m - i < 8 ? m - i : 8;
            k_ptiles[nr - 1][nv - 1](a + i * lda, lda, bp + 2 * j, ldbp, kp, c + i * ldc + j, ldc, acc_in);
        }
    }
}

bool hyi_gemm_bf16_packed(const uint16_t *a, int64_t lda, const uint16_t *bp, int64_t ldbp, int64_t kp, int64_t m,
                          int64_t n, float *c, int64_t ldc, bool accumulate) {
    if (!hyi_cpu_has_avx512_bf16() || n % 16 != 0) return false;
    if (m > 0 && n > 0) gemm_bf16_packed_512(a, lda, bp, ldbp, kp, m, n, c, ldc, accumulate ? 1 : 0);
    return true;
}

/* exp(x) for 16 lanes: the Cephes expf polynomial (as HunyuanNN's exp8), inputs clamped to [-87.3, 88.7]. */
HYI_ATTR_BF16 static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-87.3f));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 fx = _mm512_sub_ps(t, magic);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fmadd_ps(fx, _mm512_set1_ps(2.12194440e-4f), x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, z, x), _mm512_set1_ps(1.0f));
    __m512i n = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(magic));
    return _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23)));
}

HYI_ATTR_BF16 static float exp_shift_bf16_512(const float *x, int64_t n, int64_t n_pad, float shift, float scale,
                                              uint16_t *p) {
    __m512 acc = _mm512_setzero_ps();
    const __m512 sh = _mm512_set1_ps(shift), sc = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_mov_ps(m, exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh), sc)));
        acc = _mm512_add_ps(acc, v);
        _mm256_storeu_si256((__m256i *)(p + i), (__m256i)_mm512_cvtneps_pbh(v));
    }
    for (; i < n_pad; i += 16) _mm256_storeu_si256((__m256i *)(p + i), _mm256_setzero_si256());
    return _mm512_reduce_add_ps(acc);
}

float hyi_exp_shift_bf16(const float *x, int64_t n, int64_t n_pad, float shift, float scale, uint16_t *p) {
    if (hyi_cpu_has_avx512_bf16()) return exp_shift_bf16_512(x, n, n_pad, shift, scale, p);
    return exp_shift_scalar(x, n, n_pad, shift, scale, p);
}

HYI_ATTR_BF16 static void to_bf16_512(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        _mm512_storeu_si512((void *)(y + i), (__m512i)v);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16((void *)(y + i), m, (__m256i)v);
    }
}

bool hyi_gemm_bf16(const hyi_bf16_gemm *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    if (!hyi_cpu_has_avx512_bf16()) return false;
    if (m0 < m1 && n0 < n1) gemm_bf16_512(p, m0, m1, n0, n1);
    return true;
}

void hyi_to_bf16(const float *x, uint16_t *y, int64_t n) {
    if (hyi_cpu_has_avx512_bf16()) { to_bf16_512(x, y, n); return; }
    to_bf16_scalar(x, y, n);
}

#else
float hyi_exp_shift_bf16(const float *x, int64_t n, int64_t n_pad, float shift, float scale, uint16_t *p) {
    return exp_shift_scalar(x, n, n_pad, shift, scale, p);
}
bool hyi_gemm_bf16_packed(const uint16_t *a, int64_t lda, const uint16_t *bp, int64_t ldbp, int64_t kp, int64_t m,
                          int64_t n, float *c, int64_t ldc, bool accumulate) {
    (void)a; (void)lda; (void)bp; (void)ldbp; (void)kp; (void)m; (void)n; (void)c; (void)ldc; (void)accumulate;
    return false;
}
bool hyi_gemm_bf16(const hyi_bf16_gemm *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    (void)p; (void)m0; (void)m1; (void)n0; (void)n1;
    return false;
}
void hyi_to_bf16(const float *x, uint16_t *y, int64_t n) { to_bf16_scalar(x, y, n); }
#endif
