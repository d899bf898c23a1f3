/* The numeric kernels in C (quantized and float GEMM/matvec, block formats) and the run-time CPU
 * checks they are chosen by. Imported by HunyuanCore; not part of the ABI (the version script
 * exports only hy_* symbols). */
#ifndef HY_KERNELS_H
#define HY_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Path of the shared object or executable that contains the library's code (dladdr), or NULL. */
const char *hyi_image_path(void);

/* Run-time CPU features (cpuid), so AVX-512 / VNNI paths are taken only where they exist. */
bool hyi_cpu_has_avx2_fma(void);
bool hyi_cpu_has_avx512f(void);
bool hyi_cpu_has_avx512_vnni(void);
bool hyi_cpu_has_avx_vnni(void);
bool hyi_cpu_has_avx512_bf16(void);

/* Block-quantized weight kernels (quant_kernels.c; layouts in HunyuanCore/Quantization.swift). */
enum { HYI_Q8_0 = 1, HYI_Q4_0 = 2, HYI_Q4_K = 3 };
enum { HYI_PATH_SCALAR = 0, HYI_PATH_AVX2 = 1, HYI_PATH_VNNI = 2 };

/* x[n] -> ceil(n/32) int8 blocks: q[32 per block], d[block] = scale, s[block] = sum of codes.
 * Elements past n are zero. */
void hyi_quantize_act_q8(const float *x, int64_t n, int8_t *q, float *d, int32_t *s);

/* y[r] = dot(row r of w, activation) for r in [r0, r1); rows are row_bytes apart and cover nb
 * activation blocks. path HYI_PATH_VNNI only after a positive AVX-512 VNNI check. */
void hyi_matvec_q(int fmt, int path, const void *w, size_t row_bytes, int64_t r0, int64_t r1,
                  const int8_t *q, const float *d, const int32_t *s, int64_t nb, float *y);

/* Integer GEMM (quant_gemm.c, prefill). t activation rows x[i*ldx ..] of n floats -> q: t rows of
 * ceil(n/32)*32 codes, d and s: t rows of ceil(n/32) (as hyi_quantize_act_q8, bit-identical). */
void hyi_quantize_rows_q8(const float *x, int64_t t, int64_t n, int64_t ldx, int8_t *q, float *d, int32_t *s);

/* y[i*ldy + r] = dot(row r of w, activation row i) for r in [r0, r1), i in [0, t); activations as
 * written by hyi_quantize_rows_q8 with nb blocks per row. fmt HYI_Q8_0/Q4_0/Q4_K (others: no-op);
 * path as for hyi_matvec_q. Uses ~48 KB of stack; no allocation; thread-safe for disjoint rows. */
void hyi_gemm_q(int fmt, int path, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const int8_t *xq,
                const float *xd, const int32_t *xs, int64_t nb, int64_t t, float *y, int64_t ldy);

/* Row of `cols` weights in block format fmt -> out[cols] floats. */
void hyi_dequant_row(int fmt, const void *w, int64_t cols, float *out);

/* FP8 E4M3 rows r0..<r1: y[r] = scale[r] * dot(row r, x[cols]); scale includes the 2^8 of the f16
 * widening (see WeightMatrix.rowScale). path as for hyi_matvec_q (VNNI = the AVX-512 kernel). */
void hyi_matvec_fp8(int path, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t cols,
                    const float *scale, float *y);

/* Direct 3x3 convolution, stride 1, dilation d, zero padding pt (top) / pl (left) (conv_direct.c):
 * out[o, oy, ox] = bias[o] + sum_(c, ky, kx) W[o, c, ky, kx] * x[c, oy - pt + ky*d, ox - pl + kx*d] over
 * x[cin, h, w] and out[cout, ho, wo], for output rows oy0 ..< oy1 and output-channel blocks of 8
 * ob0 ..< ob1. wpk: the weights packed as [ceil(cout/8)][cin][9][8] (zeros past cout); bias may be NULL.
 * Returns false (and does nothing) without AVX-512F. Thread-safe on disjoint rows / blocks. */
bool hyi_conv3x3_f32(const float *x, int64_t cin, int64_t h, int64_t w, const float *wpk, const float *bias,
                     int64_t cout, int64_t pt, int64_t pl, int64_t d, float *out, int64_t ho, int64_t wo,
                     int64_t oy0, int64_t oy1, int64_t ob0, int64_t ob1);

/* Element formats of hyi_gemm_float / hyi_attn_pv (q8_0: blocks of an f16 scale + 32 int8, the KV cache's). */
enum { HYI_FLOAT_F32 = 0, HYI_FLOAT_F16 = 1, HYI_FLOAT_BF16 = 2, HYI_FLOAT_Q8_0 = 3 };

/* Y[i * ldy + r] = sum_k x[i * ldx + k] * W[r, k] for tokens i < t and rows r0 <= r < r1; W rows are
 * row_bytes apart, k values each in format fmt (HYI_FLOAT_*; q8_0 needs k % 32 == 0), read in place.
 * Returns false (and does nothing) without AVX-512F: the caller then widens and uses sgemm.
 * Thread-safe on disjoint rows. */
bool hyi_gemm_float(int fmt, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                    int64_t t, int64_t k, float *y, int64_t ldy);

/* acc[i * ldacc + d] += sum_{j < n} p[i * ldp + j] * V[j, d] for rows i < m and d < hd: the attention's
 * P·V over value rows row_bytes apart in format fmt (as hyi_gemm_float), read in place. Returns false
 * (and does nothing) without AVX-512F. */
bool hyi_attn_pv(int fmt, const void *v, size_t row_bytes, const float *p, int64_t ldp, int64_t m, int64_t n,
                 int64_t hd, float *acc, int64_t ldacc);

/* A bf16 × bf16 → fp32 implicit GEMM (gemm_bf16.c): out[i·c_m + j·c_n] = bias[i] +
 * Σ_t Σ_{e<seg} a[i·lda + t·seg + e] · b[col(j) + tap_off[t] + e], col(j) = (j / b_wo)·b_row +
 * (j % b_wo)·b_col. One tap with col(j) = j·k is a linear layer; a convolution passes one tap per
 * kernel position over a zero-padded channel-last copy of its input. */
typedef struct {
    const uint16_t *a; int64_t lda;          /* bf16 [m, taps·seg] */
    const uint16_t *b;                       /* bf16 activations */
    int64_t b_wo, b_row, b_col;              /* column j starts at b + col(j) */
    int64_t taps; const int64_t *tap_off;    /* [taps] element offsets added to col(j) */
    int64_t seg;                             /* values per tap */
    float *c; int64_t c_m, c_n;              /* output strides for row i / column j */
    const float *bias;                       /* [m] or NULL */
} hyi_bf16_gemm;

/* Rows m0..<m1 × columns n0..<n1 of the product above. Returns false (and does nothing) without
 * AVX512_BF16. Thread-safe on disjoint output blocks. */
bool hyi_gemm_bf16(const hyi_bf16_gemm *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1);

/* C[m, n] = (C +, when accumulate) A[m, 2·kp] · B for bf16 A (row stride lda; pairs of the reduction
 * axis adjacent) and B packed in pairs: bp[q·ldbp + 2·j + e] = B[2q + e, j]; fp32 C (row stride ldc).
 * n must be a multiple of 16. Returns false (nothing done) without AVX512_BF16 or for another n. */
bool hyi_gemm_bf16_packed(const uint16_t *a, int64_t lda, const uint16_t *bp, int64_t ldbp, int64_t kp, int64_t m,
                          int64_t n, float *c, int64_t ldc, bool accumulate);

/* p[i] = bf16(exp((x[i] − shift)·scale)) for i < n, 0 for n ≤ i < n_pad (n_pad a multiple of 16); returns the
 * fp32 sum of the exponentials (before rounding). The online-softmax step of bf16 attention. */
float hyi_exp_shift_bf16(const float *x, int64_t n, int64_t n_pad, float shift, float scale, uint16_t *p);

/* y[i] = x[i] rounded to bf16 (nearest even; NaN stays NaN). */
void hyi_to_bf16(const float *x, uint16_t *y, int64_t n);

#endif
