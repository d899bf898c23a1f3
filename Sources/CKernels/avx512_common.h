/* What the AVX-512 kernels share (gemm_float.c, gemm_bf16.c): the target attribute of their base
 * instruction set and the 4-way horizontal sum of their register tiles. x86-64 only. */
#ifndef HYI_AVX512_COMMON_H
#define HYI_AVX512_COMMON_H
#include <immintrin.h>

#define HYI_ATTR_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

/* Sum of each of 4 vectors -> lanes 0..3 of the result (a transpose-add tree). Callable from any
 * function whose target includes HYI_ATTR_512's. */
HYI_ATTR_512 static inline __m128 hyi_reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  /* a0 b0 a1 b1 per 128 */
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 abcd = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
                                _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
#endif
