/* Direct fp32 3x3 convolution, stride 1, any dilation, zero padding, over channel-major images
 * x[cin, h, w] -> out[cout, ho, wo] (Conv2d.forward's fast path for U^2-Net's shapes: few output
 * channels at high resolution, where im2col's 9x copy and sgemm's packing cost as much as the
 * arithmetic).
 *
 * Register tile: CO = 8 output channels x NP <= 3 vectors of 16 consecutive output pixels of one row
 * (24 zmm accumulators). For each input channel and each of the 9 taps, the NP input vectors are
 * loaded in place from x (unaligned, shifted by the tap) and each of the 8 weights is broadcast once
 * and multiplied into the NP vectors. Weights are packed once (Conv2d init) as [cout/8][cin][9][8].
 * Same-size convolutions (padding = dilation on each side, U^2-Net's) take the output as one flat run
 * of pixels, tiles running across row ends so narrow images (20x20, 10x10) still fill the vectors;
 * other shapes go row by row. Taps whose rows/columns fall outside the image are masked per lane
 * (masked loads read nothing there: fault suppression) or skipped when no lane reads them; tiles
 * where every tap is inside use plain loads/stores. AVX-512F only; the caller keeps the im2col path
 * without it. HYI_CONV_FLAT=0 (compile time) forces the row-by-row form, for comparison. */
#include "hy_kernels.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include "avx512_common.h"

enum { CO = 8, NPMAX = 3 };
#ifndef HYI_CONV_FLAT
#define HYI_CONV_FLAT 1
#endif

/* One tile: xb points at channel 0's input for tap (ky = 0, kx = 0) of the tile's first pixel (it
 * may lie outside the image: only lanes masked in are read); the nt taps inside the image's rows are
 * at input offsets toff[t], weight offsets tw[t] (floats), with load masks tmk[t][p]; sm[p] are the
 * store masks (masked form only). The tap loop is not unrolled: 24 accumulators + NP inputs + the
 * broadcast weight fill the 32 registers. */
#define HYI_CONV_TILE(NP, MASKED)                                                                          \
    HYI_ATTR_512 static void tile_##NP##_##MASKED(const float *xb, int64_t cstride, int64_t cin, int nt,      \
                                                  const int64_t *toff, const int *tw, const __mmask16 *tmk,  \
                                                  const __mmask16 *sm, const float *wb, const float *bias8,  \
                                                  int nco, float *y, int64_t n) {                           \
        __m512 acc[CO][NP];                                                                                \
        for (int o = 0; o < CO; o++) {                                                                     \
            __m512 b = _mm512_set1_ps(bias8[o]);                                                           \
            for (int p = 0; p < NP; p++) acc[o][p] = b;                                                    \
        }                                                                                                  \
        /* One flat loop over (channel, tap): nested loops make clang shuffle the accumulators. */    \
        const float *xc = xb, *wc = wb;                                                                    \
        int t = 0;                                                                                         \
        for (int64_t i = 0, e = cin * nt; i < e; i++) {                                                    \
            const float *xr = xc + toff[t];                                                                \
            __m512 in[NP];                                                                                 \
            for (int p = 0; p < NP; p++)                                                                   \
                in[p] = MASKED ? _mm512_maskz_loadu_ps(tmk[t * NPMAX + p], xr + 16 * p)                     \
                               : _mm512_loadu_ps(xr + 16 * p);                                             \
            const float *wt = wc + tw[t];                                                                  \
            for (int o = 0; o < CO; o++) {                                                                 \
                __m512 wv = _mm512_set1_ps(wt[o]);                                                         \
                for (int p = 0; p < NP; p++) acc[o][p] = _mm512_fmadd_ps(wv, in[p], acc[o][p]);            \
            }                                                                                              \
            if (++t == nt) { t = 0; xc += cstride; wc += 9 * CO; }                                         \
        }                                                                                                  \
        for (int o = 0; o < nco; o++)                                                                      \
            for (int p = 0; p < NP; p++) {                                                                 \
                if (MASKED) _mm512_mask_storeu_ps(y + o * n + 16 * p, sm[p], acc[o][p]);                   \
                else _mm512_storeu_ps(y + o * n + 16 * p, acc[o][p]);                                      \
            }                                                                                              \
    }
HYI_CONV_TILE(1, 0)
HYI_CONV_TILE(2, 0)
HYI_CONV_TILE(3, 0)
HYI_CONV_TILE(1, 1)
HYI_CONV_TILE(2, 1)
HYI_CONV_TILE(3, 1)

typedef void (*tile_fn)(const float *, int64_t, int64_t, int, const int64_t *, const int *, const __mmask16 *,
                        const __mmask16 *, const float *, const float *, int, float *, int64_t);

/* Lanes lo ..< hi of 16 (clamped). */
static inline __mmask16 lanes(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

static const tile_fn fns[2][NPMAX] = {{tile_1_0, tile_2_0, tile_3_0}, {tile_1_1, tile_2_1, tile_3_1}};

/* Output channel blocks ob0 ..< ob1 of one tile (8 channels each). */
static inline void run_blocks(tile_fn f, const float *xb, int64_t cstride, int64_t cin, int nt, const int64_t *toff,
                              const int *tw, const __mmask16 *tmk, const __mmask16 *sm, const float *wpk,
                              const float *bias, int64_t cout, float *y, int64_t n, int64_t ob0, int64_t ob1) {
    for (int64_t ob = ob0; ob < ob1; ob++) {
        int nco = (int)(cout - ob * CO < CO ? cout - ob * CO : CO);
        float b8[CO] = {0};
        if (bias) for (int o = 0; o < nco; o++) b8[o] = bias[ob * CO + o];
        f(xb, cstride, cin, nt, toff, tw, tmk, sm, wpk + ob * cin * 9 * CO, b8, nco, y + ob * CO * n, n);
    }
}

/* Same-size convolution (h == ho, w == wo): the output taken as one flat run of n pixels, tiles of 48
 * consecutive pixels across row ends, so narrow images fill the vectors too. A tap at flat pixel q
 * reads x[q + (ky·d − pt)·w + kx·d − pl] where its row and column are inside, masked lanes elsewhere. */
static void conv3x3_flat(const float *x, int64_t cin, int64_t h, int64_t w, const float *wpk, const float *bias,
                         int64_t cout, int64_t pt, int64_t pl, int64_t d, float *out, int64_t q0, int64_t q1,
                         int64_t ob0, int64_t ob1) {
    const int64_t n = h * w;
    for (int64_t t0 = q0; t0 < q1; t0 += 16 * NPMAX) {
        int64_t left = q1 - t0;
        int np = left >= 16 * NPMAX ? NPMAX : (int)((left + 15) / 16);
        /* Per vector: lanes inside the range, and lanes whose row / column under each ky / kx is inside. */
        __mmask16 sm[NPMAX] = {0}, rowm[3][NPMAX] = {{0}}, colm[3][NPMAX] = {{0}};
        int64_t oy = t0 / w, ox = t0 % w;
        for (int p = 0; p < np; p++)
            for (int l = 0; l < 16; l++) {
                int64_t q = t0 + 16 * p + l;
                if (q < q1) {
                    sm[p] |= (__mmask16)(1u << l);
                    for (int k = 0; k < 3; k++) {
                        int64_t iy = oy - pt + k * d, ix = ox - pl + k * d;
                        if (iy >= 0 && iy < h) rowm[k][p] |= (__mmask16)(1u << l);
                        if (ix >= 0 && ix < w) colm[k][p] |= (__mmask16)(1u << l);
                    }
                }
                if (++ox == w) { ox = 0; oy++; }
            }
        int64_t toff[9];
        int tw[9], nt = 0, full = 1;
        __mmask16 tmk[9 * NPMAX];
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                __mmask16 any = 0;
                for (int p = 0; p < np; p++) {
                    __mmask16 m = rowm[ky][p] & colm[kx][p];
                    tmk[nt * NPMAX + p] = m;
                    any |= m;
                    if (m != 0xFFFF) full = 0;
                }
                if (!any) continue;
                toff[nt] = (ky * d - pt) * w + kx * d - pl;
                tw[nt] = (ky * 3 + kx) * CO;
                nt++;
            }
        if (nt < 9) full = 0;  /* a skipped tap: lanes must be masked where it would have been read */
        run_blocks(fns[!full][np - 1], x + t0, n, cin, nt, toff, tw, tmk, sm, wpk, bias, cout, out + t0, n, ob0, ob1);
    }
}

static void conv3x3_512(const float *x, int64_t cin, int64_t h, int64_t w, const float *wpk, const float *bias,
                        int64_t cout, int64_t pt, int64_t pl, int64_t d, float *out, int64_t ho, int64_t wo,
                        int64_t oy0, int64_t oy1, int64_t ob0, int64_t ob1) {
    if (HYI_CONV_FLAT && h == ho && w == wo) {
        conv3x3_flat(x, cin, h, w, wpk, bias, cout, pt, pl, d, out, oy0 * w, oy1 * w, ob0, ob1);
        return;
    }
    const int64_t n = ho * wo, cstride = h * w;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        int ky0 = 3, ky1 = 0;
        for (int ky = 0; ky < 3; ky++) {
            int64_t iy = oy - pt + ky * d;
            if (iy >= 0 && iy < h) { if (ky < ky0) ky0 = ky; ky1 = ky + 1; }
        }
        if (ky1 <= ky0) ky0 = ky1 = 0;
        for (int64_t ox0 = 0; ox0 < wo; ox0 += 16 * NPMAX) {
            int64_t left = wo - ox0;
            int np = left >= 16 * NPMAX ? NPMAX : (int)((left + 15) / 16);
            int64_t last = ox0 + 16 * np;   /* one past the tile's last lane */
            int masked = !(ox0 - pl >= 0 && last - 1 + 2 * d - pl < w && last <= wo);
            __mmask16 mk[3 * NPMAX] = {0}, sm[NPMAX] = {0};
            if (masked) {
                for (int p = 0; p < np; p++) {
                    int64_t base = ox0 + 16 * p;   /* output x of lane 0 */
                    sm[p] = lanes(0, wo - base);
                    for (int kx = 0; kx < 3; kx++) {
                        int64_t off = kx * d - pl;  /* ix = ox + off */
                        int64_t hi = wo - base;
                        if (w - off - base < hi) hi = w - off - base;
                        mk[kx * NPMAX + p] = lanes(-off - base, hi);
                    }
                }
            }
            /* The taps inside the image's rows: input offset, weight offset, masks. */
            int64_t toff[9];
            int tw[9], nt = 0;
            __mmask16 tmk[9 * NPMAX];
            for (int ky = ky0; ky < ky1; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    toff[nt] = ky * d * w + kx * d;
                    tw[nt] = (ky * 3 + kx) * CO;
                    for (int p = 0; p < NPMAX; p++) tmk[nt * NPMAX + p] = mk[kx * NPMAX + p];
                    nt++;
                }
            const float *xb = x + (oy - pt) * w + ox0 - pl;
            tile_fn f = fns[masked][np - 1];
            for (int64_t ob = ob0; ob < ob1; ob++) {
                int nco = (int)(cout - ob * CO < CO ? cout - ob * CO : CO);
                float b8[CO] = {0};
                if (bias) for (int o = 0; o < nco; o++) b8[o] = bias[ob * CO + o];
                f(xb, cstride, cin, nt, toff, tw, tmk, sm, wpk + ob * cin * 9 * CO, b8, nco,
                  out + ob * CO * n + oy * wo + ox0, n);
            }
        }
    }
}

bool hyi_conv3x3_f32(const float *x, int64_t cin, int64_t h, int64_t w, const float *wpk, const float *bias,
                     int64_t cout, int64_t pt, int64_t pl, int64_t d, float *out, int64_t ho, int64_t wo,
                     int64_t oy0, int64_t oy1, int64_t ob0, int64_t ob1) {
    if (!hyi_cpu_has_avx512f()) return false;
    conv3x3_512(x, cin, h, w, wpk, bias, cout, pt, pl, d, out, ho, wo, oy0, oy1, ob0, ob1);
    return true;
}

#else
bool hyi_conv3x3_f32(const float *x, int64_t cin, int64_t h, int64_t w, const float *wpk, const float *bias,
                     int64_t cout, int64_t pt, int64_t pl, int64_t d, float *out, int64_t ho, int64_t wo,
                     int64_t oy0, int64_t oy1, int64_t ob0, int64_t ob1) {
    (void)x; (void)cin; (void)h; (void)w; (void)wpk; (void)bias; (void)cout; (void)pt; (void)pl; (void)d;
    (void)out; (void)ho; (void)wo; (void)oy0; (void)oy1; (void)ob0; (void)ob1;
    return false;
}
#endif
