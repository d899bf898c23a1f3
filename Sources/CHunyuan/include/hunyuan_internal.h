/* Internal helpers shared by the Swift targets; not part of the ABI (not exported: the version
 * script keeps only hy_* symbols). */
#ifndef HUNYUAN_INTERNAL_H
#define HUNYUAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Copies `message` (UTF-8, truncated at a character boundary to fit) into this thread's error slot. */
void hyi_set_error(const char *message);

/* Path of the shared object or executable that contains the library's code (dladdr), or NULL. */
const char *hyi_image_path(void);

/* Run-time CPU features (cpuid), so AVX-512 / VNNI paths are taken only where they exist. */
bool hyi_cpu_has_avx2_fma(void);
bool hyi_cpu_has_avx512f(void);
bool hyi_cpu_has_avx512_vnni(void);
bool hyi_cpu_has_avx_vnni(void);

/* Block-quantized weight kernels (quant_kernels.c; layouts in HunyuanCore/Quantization.swift). */
#include <stdint.h>
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

/* Float weight formats of hyi_gemm_float. */
enum { HYI_FLOAT_F32 = 0, HYI_FLOAT_F16 = 1, HYI_FLOAT_BF16 = 2 };

/* Y[i * ldy + r] = sum_k x[i * ldx + k] * W[r, k] for tokens i < t and rows r0 <= r < r1; W rows are
 * row_bytes apart, k values each in format fmt (HYI_FLOAT_*), read in place. Returns false (and does
 * nothing) without AVX-512F: the caller then widens and uses sgemm. Thread-safe on disjoint rows. */
bool hyi_gemm_float(int fmt, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                    int64_t t, int64_t k, float *y, int64_t ldy);

#endif
