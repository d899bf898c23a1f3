/* Private helpers of the block-format kernels (quant_kernels.c, quant_gemm.c): the f16 scale fields. */
#ifndef HYI_BLOCK_FORMATS_H
#define HYI_BLOCK_FORMATS_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

/* Little-endian u16 at p (unaligned). */
static inline uint16_t hyi_ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* IEEE half -> float. */
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

#endif
