#include "sfumato_winograd.h"
#include "sfumato_vector.h"
#include "sfumato_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SFUMATO_X86 1
#endif

/* The three 1-D transforms, written once over an operation prefix P (P##_add, _sub, _fma, _mul,
   _set1) so that the plain, AVX2 and AVX-512 code do the same arithmetic in the same order.
   fma(a, b, c) = a * b + c, rounded once by the vector code and twice by the plain C. */

/* r = B^T d: rows [1 3/2 -2 -3/2 1 0], [0 -1 -5/2 -1/2 1 0], [0 1 1/2 -5/2 1 0],
   [0 -1/2 -1 1/2 1 0], [0 2 -1 -2 1 0], [0 1 3/2 -2 -3/2 1]. */
#define INPUT_1D(P, d, r) do { \
        P##_t t13_ = P##_sub((d)[1], (d)[3]), t42_ = P##_sub((d)[4], (d)[2]); \
        (r)[0] = P##_fma(P##_set1(-2.0f), (d)[2], P##_fma(P##_set1(1.5f), t13_, P##_add((d)[0], (d)[4]))); \
        (r)[1] = P##_fma(P##_set1(-0.5f), (d)[3], P##_fma(P##_set1(-2.5f), (d)[2], P##_sub((d)[4], (d)[1]))); \
        (r)[2] = P##_fma(P##_set1(-2.5f), (d)[3], P##_fma(P##_set1(0.5f), (d)[2], P##_add((d)[4], (d)[1]))); \
        (r)[3] = P##_fma(P##_set1(-0.5f), t13_, t42_); \
        (r)[4] = P##_fma(P##_set1(2.0f), t13_, t42_); \
        (r)[5] = P##_fma(P##_set1(-2.0f), (d)[3], P##_fma(P##_set1(-1.5f), t42_, P##_add((d)[1], (d)[5]))); \
    } while (0)

/* r = A^T m: rows [1 1 1 1 1 0], [0 1 -1 2 -1/2 0], [0 1 1 4 1/4 0], [0 1 -1 8 -1/8 1]. */
#define OUTPUT_1D(P, m, r) do { \
        P##_t sum_ = P##_add((m)[1], (m)[2]), diff_ = P##_sub((m)[1], (m)[2]); \
        (r)[0] = P##_add(P##_add((m)[0], sum_), P##_add((m)[3], (m)[4])); \
        (r)[1] = P##_fma(P##_set1(2.0f), (m)[3], P##_fma(P##_set1(-0.5f), (m)[4], diff_)); \
        (r)[2] = P##_fma(P##_set1(4.0f), (m)[3], P##_fma(P##_set1(0.25f), (m)[4], sum_)); \
        (r)[3] = P##_fma(P##_set1(8.0f), (m)[3], P##_fma(P##_set1(-0.125f), (m)[4], P##_add(diff_, (m)[5]))); \
    } while (0)

/* r = G g: rows [1 0 0], [-1/3 -1/3 -1/3], [1/3 -1/3 1/3], [1/15 2/15 4/15], [-16/15 8/15 -4/15], [0 0 1]. */
#define WEIGHT_1D(P, g0, g1, g2, r) do { \
        P##_t ends_ = P##_add((g0), (g2)); \
        (r)[0] = (g0); \
        (r)[1] = P##_mul(P##_set1(-1.0f / 3), P##_add(ends_, (g1))); \
        (r)[2] = P##_mul(P##_set1(1.0f / 3), P##_sub(ends_, (g1))); \
        (r)[3] = P##_mul(P##_set1(1.0f / 15), P##_fma(P##_set1(2.0f), (g1), P##_fma(P##_set1(4.0f), (g2), (g0)))); \
        (r)[4] = P##_fma(P##_set1(8.0f / 15), (g1), P##_fma(P##_set1(-16.0f / 15), (g0), P##_mul(P##_set1(-4.0f / 15), (g2)))); \
        (r)[5] = (g2); \
    } while (0)

typedef float scalar_t;
#define scalar_add(a, b) ((a) + (b))
#define scalar_sub(a, b) ((a) - (b))
#define scalar_mul(a, b) ((a) * (b))
#define scalar_fma(a, b, c) ((a) * (b) + (c))
#define scalar_set1(x) (x)

/* Input transform, first pass: the six rows of the column transform B^T d of one tile row, over the
   whole image width, into `strip` (6 rows of `strip_width` floats). Strip column s holds image column
   s - 1 (column 0 and everything past the image are the zero padding), so tile tx reads strip
   columns 4tx..4tx+5 and the second pass needs no bounds checks. Rows outside the image read `zeros`. */
typedef struct {
    const float *rows[6];
    float *strip;
    ptrdiff_t strip_width;
    int width;
} input_strip;

static input_strip strip_for_tile_row(const float *plane, int height, int width, int ty, const float *zeros,
                                      float *strip, ptrdiff_t strip_width) {
    input_strip s = {.strip = strip, .strip_width = strip_width, .width = width};
    for (int i = 0; i < 6; i++) {
        int y = 4 * ty - 1 + i;
        s.rows[i] = y >= 0 && y < height ? plane + (ptrdiff_t)y * width : zeros;
    }
    return s;
}

/* The padding columns of the strip rows (the first pass writes columns 1..width). */
static void clear_strip_padding(const input_strip *s) {
    for (int a = 0; a < 6; a++) {
        float *row = s->strip + a * s->strip_width;
        row[0] = 0;
        memset(row + s->width + 1, 0, (size_t)(s->strip_width - s->width - 1) * sizeof(float));
    }
}

/* Floats per strip row: 64 columns per 16 tiles plus the two columns the last tile reads past them,
   rounded to whole AVX-512 vectors. */
static ptrdiff_t strip_width_for(int tiles_x) { return 64 * (ptrdiff_t)((tiles_x + 15) / 16) + 16; }

/* ---- plain C ---- */

static void weights_generic(const float *weight, int out_channels, int channels, float *u, ptrdiff_t position_stride) {
    for (int o = 0; o < out_channels; o++) {
        for (int c = 0; c < channels; c++) {
            const float *g = weight + ((ptrdiff_t)o * channels + c) * 9;
            float columns[3][6], r[6];
            for (int j = 0; j < 3; j++) WEIGHT_1D(scalar, g[j], g[3 + j], g[6 + j], columns[j]);
            for (int a = 0; a < 6; a++) {
                WEIGHT_1D(scalar, columns[0][a], columns[1][a], columns[2][a], r);
                for (int b = 0; b < 6; b++) u[(6 * a + b) * position_stride + (ptrdiff_t)o * channels + c] = r[b];
            }
        }
    }
}

static void input_rows_generic(const input_strip *s) {
    for (int x = 0; x < s->width; x++) {
        float d[6], r[6];
        for (int i = 0; i < 6; i++) d[i] = s->rows[i][x];
        INPUT_1D(scalar, d, r);
        for (int a = 0; a < 6; a++) s->strip[a * s->strip_width + 1 + x] = r[a];
    }
}

static void input_tiles_generic(const input_strip *s, int tiles_x, float *v, ptrdiff_t position_stride) {
    for (int a = 0; a < 6; a++) {
        const float *row = s->strip + a * s->strip_width;
        for (int tx = 0; tx < tiles_x; tx++) {
            float r[6];
            INPUT_1D(scalar, row + 4 * tx, r);
            for (int b = 0; b < 6; b++) v[(6 * a + b) * position_stride + tx] = r[b];
        }
    }
}

static void output_generic(const float *m, ptrdiff_t position_stride, float bias, int height, int width, int ty,
                           int tiles_x, float *plane, int accumulate) {
    for (int tx = 0; tx < tiles_x; tx++) {
        float columns[6][4], d[6], r[4];
        for (int b = 0; b < 6; b++) {
            for (int a = 0; a < 6; a++) d[a] = m[(6 * a + b) * position_stride + tx];
            OUTPUT_1D(scalar, d, columns[b]);
        }
        for (int i = 0; i < 4 && 4 * ty + i < height; i++) {
            for (int b = 0; b < 6; b++) d[b] = columns[b][i];
            OUTPUT_1D(scalar, d, r);
            float *line = plane + (ptrdiff_t)(4 * ty + i) * width;
            for (int j = 0; j < 4 && 4 * tx + j < width; j++)
                line[4 * tx + j] = accumulate ? (r[j] + bias) + line[4 * tx + j] : r[j] + bias;
        }
    }
}

#ifdef SFUMATO_X86

/* ---- AVX2 + FMA: 8 tiles per vector ---- */

#define AVX2 __attribute__((target("avx2,fma")))
typedef __m256 avx2_t;
#define avx2_add _mm256_add_ps
#define avx2_sub _mm256_sub_ps
#define avx2_mul _mm256_mul_ps
#define avx2_fma _mm256_fmadd_ps
#define avx2_set1 _mm256_set1_ps

/* Lanes below `count` (0...8) set. */
static inline AVX2 __m256i avx2_lanes(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static AVX2 void weights_avx2(const float *weight, int out_channels, int channels, float *u, ptrdiff_t position_stride) {
    const __m256i nine = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    for (int o = 0; o < out_channels; o++) {
        for (int c = 0; c < channels; c += 8) {
            __m256i lanes = avx2_lanes(channels - c);
            const float *g = weight + ((ptrdiff_t)o * channels + c) * 9;
            __m256 k[9], columns[3][6], r[6];
            for (int e = 0; e < 9; e++)
                k[e] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), g + e, nine, _mm256_castsi256_ps(lanes), 4);
            for (int j = 0; j < 3; j++) WEIGHT_1D(avx2, k[j], k[3 + j], k[6 + j], columns[j]);
            for (int a = 0; a < 6; a++) {
                WEIGHT_1D(avx2, columns[0][a], columns[1][a], columns[2][a], r);
                for (int b = 0; b < 6; b++)
                    _mm256_maskstore_ps(u + (6 * a + b) * position_stride + (ptrdiff_t)o * channels + c, lanes, r[b]);
            }
        }
    }
}

static AVX2 void input_rows_avx2(const input_strip *s) {
    for (int x = 0; x < s->width; x += 8) {
        __m256i lanes = avx2_lanes(s->width - x);
        __m256 d[6], r[6];
        for (int i = 0; i < 6; i++) d[i] = _mm256_maskload_ps(s->rows[i] + x, lanes);
        INPUT_1D(avx2, d, r);
        for (int a = 0; a < 6; a++) _mm256_maskstore_ps(s->strip + a * s->strip_width + 1 + x, lanes, r[a]);
    }
}

/* d[j] = columns 4t + j of a strip row for the 8 tiles t starting at `row`. The 128-bit halves are
   paired as tiles (0, 4), (1, 5), (2, 6), (3, 7) first, so the in-lane 4x4 transposes leave the
   tiles in order. */
static inline AVX2 void deinterleave_avx2(const float *row, __m256 d[6]) {
    __m256 v0 = _mm256_loadu_ps(row), v1 = _mm256_loadu_ps(row + 8);
    __m256 v2 = _mm256_loadu_ps(row + 16), v3 = _mm256_loadu_ps(row + 24);
    __m256 t04 = _mm256_permute2f128_ps(v0, v2, 0x20), t15 = _mm256_permute2f128_ps(v0, v2, 0x31);
    __m256 t26 = _mm256_permute2f128_ps(v1, v3, 0x20), t37 = _mm256_permute2f128_ps(v1, v3, 0x31);
    __m256 lo01 = _mm256_unpacklo_ps(t04, t15), hi01 = _mm256_unpackhi_ps(t04, t15);
    __m256 lo23 = _mm256_unpacklo_ps(t26, t37), hi23 = _mm256_unpackhi_ps(t26, t37);
    d[0] = _mm256_shuffle_ps(lo01, lo23, 0x44);
    d[1] = _mm256_shuffle_ps(lo01, lo23, 0xEE);
    d[2] = _mm256_shuffle_ps(hi01, hi23, 0x44);
    d[3] = _mm256_shuffle_ps(hi01, hi23, 0xEE);
    /* Columns 4t + 4 and 4t + 5 are columns 0 and 1 of the next tile. */
    const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
    d[4] = _mm256_blend_ps(_mm256_permutevar8x32_ps(d[0], next), _mm256_broadcast_ss(row + 32), 0x80);
    d[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(d[1], next), _mm256_broadcast_ss(row + 33), 0x80);
}

static AVX2 void input_tiles_avx2(const input_strip *s, int tiles_x, float *v, ptrdiff_t position_stride) {
    for (int a = 0; a < 6; a++) {
        const float *row = s->strip + a * s->strip_width;
        for (int tx = 0; tx < tiles_x; tx += 8) {
            __m256i lanes = avx2_lanes(tiles_x - tx);
            __m256 d[6], r[6];
            deinterleave_avx2(row + 4 * tx, d);
            INPUT_1D(avx2, d, r);
            for (int b = 0; b < 6; b++) _mm256_maskstore_ps(v + (6 * a + b) * position_stride + tx, lanes, r[b]);
        }
    }
}

static AVX2 void output_avx2(const float *m, ptrdiff_t position_stride, float bias, int height, int width, int ty,
                             int tiles_x, float *plane, int accumulate) {
    const __m256 shift = _mm256_set1_ps(bias);
    for (int tx = 0; tx < tiles_x; tx += 8) {
        __m256i lanes = avx2_lanes(tiles_x - tx);
        __m256 columns[6][4], d[6], r[4];
        for (int b = 0; b < 6; b++) {
            for (int a = 0; a < 6; a++) d[a] = _mm256_maskload_ps(m + (6 * a + b) * position_stride + tx, lanes);
            OUTPUT_1D(avx2, d, columns[b]);
        }
        for (int i = 0; i < 4 && 4 * ty + i < height; i++) {
            for (int b = 0; b < 6; b++) d[b] = columns[b][i];
            OUTPUT_1D(avx2, d, r);
            for (int j = 0; j < 4; j++) r[j] = _mm256_add_ps(r[j], shift);
            /* r[j] lane t is column 4t + j: interleave into 32 consecutive columns. */
            __m256 lo01 = _mm256_unpacklo_ps(r[0], r[1]), hi01 = _mm256_unpackhi_ps(r[0], r[1]);
            __m256 lo23 = _mm256_unpacklo_ps(r[2], r[3]), hi23 = _mm256_unpackhi_ps(r[2], r[3]);
            __m256 t04 = _mm256_shuffle_ps(lo01, lo23, 0x44), t15 = _mm256_shuffle_ps(lo01, lo23, 0xEE);
            __m256 t26 = _mm256_shuffle_ps(hi01, hi23, 0x44), t37 = _mm256_shuffle_ps(hi01, hi23, 0xEE);
            __m256 out[4] = {
                _mm256_permute2f128_ps(t04, t15, 0x20), _mm256_permute2f128_ps(t26, t37, 0x20),
                _mm256_permute2f128_ps(t04, t15, 0x31), _mm256_permute2f128_ps(t26, t37, 0x31),
            };
            float *line = plane + (ptrdiff_t)(4 * ty + i) * width + 4 * tx;
            for (int q = 0; q < 4 && 4 * tx + 8 * q < width; q++) {
                __m256i store = avx2_lanes(width - 4 * tx - 8 * q);
                if (accumulate) out[q] = _mm256_add_ps(out[q], _mm256_maskload_ps(line + 8 * q, store));
                _mm256_maskstore_ps(line + 8 * q, store, out[q]);
            }
        }
    }
}

/* ---- AVX-512F: 16 tiles per vector ---- */

#define AVX512 __attribute__((target("avx512f")))
typedef __m512 avx512_t;
#define avx512_add _mm512_add_ps
#define avx512_sub _mm512_sub_ps
#define avx512_mul _mm512_mul_ps
#define avx512_fma _mm512_fmadd_ps
#define avx512_set1 _mm512_set1_ps

/* Lanes below `count` set; count may exceed 16. */
static inline __mmask16 avx512_lanes(int count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

static AVX512 void weights_avx512(const float *weight, int out_channels, int channels, float *u, ptrdiff_t position_stride) {
    const __m512i nine = _mm512_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 135);
    for (int o = 0; o < out_channels; o++) {
        for (int c = 0; c < channels; c += 16) {
            __mmask16 lanes = avx512_lanes(channels - c);
            const float *g = weight + ((ptrdiff_t)o * channels + c) * 9;
            __m512 k[9], columns[3][6], r[6];
            for (int e = 0; e < 9; e++) k[e] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, nine, g + e, 4);
            for (int j = 0; j < 3; j++) WEIGHT_1D(avx512, k[j], k[3 + j], k[6 + j], columns[j]);
            for (int a = 0; a < 6; a++) {
                WEIGHT_1D(avx512, columns[0][a], columns[1][a], columns[2][a], r);
                for (int b = 0; b < 6; b++)
                    _mm512_mask_storeu_ps(u + (6 * a + b) * position_stride + (ptrdiff_t)o * channels + c, lanes, r[b]);
            }
        }
    }
}

static AVX512 void input_rows_avx512(const input_strip *s) {
    for (int x = 0; x < s->width; x += 16) {
        __mmask16 lanes = avx512_lanes(s->width - x);
        __m512 d[6], r[6];
        for (int i = 0; i < 6; i++) d[i] = _mm512_maskz_loadu_ps(lanes, s->rows[i] + x);
        INPUT_1D(avx512, d, r);
        for (int a = 0; a < 6; a++) _mm512_mask_storeu_ps(s->strip + a * s->strip_width + 1 + x, lanes, r[a]);
    }
}

/* d[j] = columns 4t + j of a strip row for the 16 tiles t starting at `row`. */
static inline AVX512 void deinterleave_avx512(const float *row, __m512 d[6]) {
    /* Low half: columns 0 and 1 (or 2 and 3) of tiles 0..7 of a pair of vectors. */
    const __m512i even = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i odd = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    __m512 v0 = _mm512_loadu_ps(row), v1 = _mm512_loadu_ps(row + 16);
    __m512 v2 = _mm512_loadu_ps(row + 32), v3 = _mm512_loadu_ps(row + 48);
    __m512 lo01 = _mm512_permutex2var_ps(v0, even, v1), lo23 = _mm512_permutex2var_ps(v0, odd, v1);
    __m512 hi01 = _mm512_permutex2var_ps(v2, even, v3), hi23 = _mm512_permutex2var_ps(v2, odd, v3);
    d[0] = _mm512_shuffle_f32x4(lo01, hi01, _MM_SHUFFLE(1, 0, 1, 0));
    d[1] = _mm512_shuffle_f32x4(lo01, hi01, _MM_SHUFFLE(3, 2, 3, 2));
    d[2] = _mm512_shuffle_f32x4(lo23, hi23, _MM_SHUFFLE(1, 0, 1, 0));
    d[3] = _mm512_shuffle_f32x4(lo23, hi23, _MM_SHUFFLE(3, 2, 3, 2));
    /* Columns 4t + 4 and 4t + 5 are columns 0 and 1 of the next tile. */
    __m512i after0 = _mm512_castps_si512(_mm512_maskz_loadu_ps(1, row + 64));
    __m512i after1 = _mm512_castps_si512(_mm512_maskz_loadu_ps(1, row + 65));
    d[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(after0, _mm512_castps_si512(d[0]), 1));
    d[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(after1, _mm512_castps_si512(d[1]), 1));
}

static AVX512 void input_tiles_avx512(const input_strip *s, int tiles_x, float *v, ptrdiff_t position_stride) {
    for (int a = 0; a < 6; a++) {
        const float *row = s->strip + a * s->strip_width;
        for (int tx = 0; tx < tiles_x; tx += 16) {
            __mmask16 lanes = avx512_lanes(tiles_x - tx);
            __m512 d[6], r[6];
            deinterleave_avx512(row + 4 * tx, d);
            INPUT_1D(avx512, d, r);
            for (int b = 0; b < 6; b++) _mm512_mask_storeu_ps(v + (6 * a + b) * position_stride + tx, lanes, r[b]);
        }
    }
}

static AVX512 void output_avx512(const float *m, ptrdiff_t position_stride, float bias, int height, int width, int ty,
                                 int tiles_x, float *plane, int accumulate) {
    const __m512 shift = _mm512_set1_ps(bias);
    for (int tx = 0; tx < tiles_x; tx += 16) {
        __mmask16 lanes = avx512_lanes(tiles_x - tx);
        __m512 columns[6][4], d[6], r[4];
        for (int b = 0; b < 6; b++) {
            for (int a = 0; a < 6; a++) d[a] = _mm512_maskz_loadu_ps(lanes, m + (6 * a + b) * position_stride + tx);
            OUTPUT_1D(avx512, d, columns[b]);
        }
        for (int i = 0; i < 4 && 4 * ty + i < height; i++) {
            for (int b = 0; b < 6; b++) d[b] = columns[b][i];
            OUTPUT_1D(avx512, d, r);
            for (int j = 0; j < 4; j++) r[j] = _mm512_add_ps(r[j], shift);
            /* r[j] lane t is column 4t + j: interleave into 64 consecutive columns. In each 128-bit
               block k, t0 holds tile 4k, t1 tile 4k + 1, and so on. */
            __m512 lo01 = _mm512_unpacklo_ps(r[0], r[1]), hi01 = _mm512_unpackhi_ps(r[0], r[1]);
            __m512 lo23 = _mm512_unpacklo_ps(r[2], r[3]), hi23 = _mm512_unpackhi_ps(r[2], r[3]);
            __m512 t0 = _mm512_shuffle_ps(lo01, lo23, 0x44), t1 = _mm512_shuffle_ps(lo01, lo23, 0xEE);
            __m512 t2 = _mm512_shuffle_ps(hi01, hi23, 0x44), t3 = _mm512_shuffle_ps(hi01, hi23, 0xEE);
            __m512 low01 = _mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(1, 0, 1, 0));
            __m512 low23 = _mm512_shuffle_f32x4(t2, t3, _MM_SHUFFLE(1, 0, 1, 0));
            __m512 high01 = _mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(3, 2, 3, 2));
            __m512 high23 = _mm512_shuffle_f32x4(t2, t3, _MM_SHUFFLE(3, 2, 3, 2));
            __m512 out[4] = {
                _mm512_shuffle_f32x4(low01, low23, _MM_SHUFFLE(2, 0, 2, 0)),
                _mm512_shuffle_f32x4(low01, low23, _MM_SHUFFLE(3, 1, 3, 1)),
                _mm512_shuffle_f32x4(high01, high23, _MM_SHUFFLE(2, 0, 2, 0)),
                _mm512_shuffle_f32x4(high01, high23, _MM_SHUFFLE(3, 1, 3, 1)),
            };
            float *line = plane + (ptrdiff_t)(4 * ty + i) * width + 4 * tx;
            for (int q = 0; q < 4; q++) {
                __mmask16 store = avx512_lanes(width - 4 * tx - 16 * q);
                if (accumulate) out[q] = _mm512_add_ps(out[q], _mm512_maskz_loadu_ps(store, line + 16 * q));
                _mm512_mask_storeu_ps(line + 16 * q, store, out[q]);
            }
        }
    }
}

#endif /* SFUMATO_X86 */

/* ---- entry points ---- */

void sfumato_winograd_f43_weights(int variant, const float *weight, int out_channels, int channels,
                                  float *u, ptrdiff_t position_stride) {
    switch (variant) {
#ifdef SFUMATO_X86
    case SFUMATO_KERNELS_AVX512: weights_avx512(weight, out_channels, channels, u, position_stride); break;
    case SFUMATO_KERNELS_AVX2: weights_avx2(weight, out_channels, channels, u, position_stride); break;
#endif
    default: weights_generic(weight, out_channels, channels, u, position_stride); break;
    }
}

void sfumato_winograd_f43_input(int variant, const float *image, int channels, int height, int width,
                                int tile_row_begin, int tile_row_end,
                                float *v, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                                const float *affine, int silu, int upsample) {
    int tiles_x = (width + 3) / 4;
    ptrdiff_t strip_width = strip_width_for(tiles_x);
    float *strip = malloc((size_t)(6 * strip_width) * sizeof(float));
    float *zeros = calloc((size_t)width + 16, sizeof(float));
    /* The six rows of one tile row as the transform reads them, when they are built on the fly. */
    int built = affine || upsample;
    float *rows = built ? malloc((size_t)(6 * width) * sizeof(float)) : NULL;
    if (!strip || !zeros || (built && !rows)) abort();
    int source_width = upsample ? width / 2 : width;
    for (int c = 0; c < channels; c++) {
        const float *plane = image + (ptrdiff_t)c * (upsample ? (height / 2) * source_width : height * width);
        for (int ty = tile_row_begin; ty < tile_row_end; ty++) {
            input_strip s = strip_for_tile_row(plane, height, width, ty, zeros, strip, strip_width);
            for (int i = 0; i < 6 && built; i++) {
                if (s.rows[i] == zeros) continue;
                float *row = rows + (ptrdiff_t)i * width;
                if (upsample) {
                    const float *source = plane + (ptrdiff_t)((4 * ty - 1 + i) / 2) * source_width;
                    for (int x = 0; x < width; x++) row[x] = source[x / 2];
                    s.rows[i] = row;
                }
                if (affine) {
                    const float *a = affine + 3 * (ptrdiff_t)c;
                    sfumato_normalize(variant, s.rows[i], row, width, a[0], a[1], a[2], silu);
                    s.rows[i] = row;
                }
            }
            float *tiles = v + c * channel_stride + (ptrdiff_t)(ty - tile_row_begin) * tiles_x;
            switch (variant) {
#ifdef SFUMATO_X86
            case SFUMATO_KERNELS_AVX512:
                input_rows_avx512(&s);
                clear_strip_padding(&s);
                input_tiles_avx512(&s, tiles_x, tiles, position_stride);
                break;
            case SFUMATO_KERNELS_AVX2:
                input_rows_avx2(&s);
                clear_strip_padding(&s);
                input_tiles_avx2(&s, tiles_x, tiles, position_stride);
                break;
#endif
            default:
                input_rows_generic(&s);
                clear_strip_padding(&s);
                input_tiles_generic(&s, tiles_x, tiles, position_stride);
                break;
            }
        }
    }
    free(rows);
    free(zeros);
    free(strip);
}

void sfumato_winograd_f43_output(int variant, const float *m, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                                 const float *bias, int out_channels, int height, int width,
                                 int tile_row_begin, int tile_row_end, float *output, int accumulate) {
    int tiles_x = (width + 3) / 4;
    for (int o = 0; o < out_channels; o++) {
        float shift = bias ? bias[o] : 0;
        float *plane = output + (ptrdiff_t)o * height * width;
        for (int ty = tile_row_begin; ty < tile_row_end; ty++) {
            const float *tiles = m + o * channel_stride + (ptrdiff_t)(ty - tile_row_begin) * tiles_x;
            switch (variant) {
#ifdef SFUMATO_X86
            case SFUMATO_KERNELS_AVX512: output_avx512(tiles, position_stride, shift, height, width, ty, tiles_x, plane, accumulate); break;
            case SFUMATO_KERNELS_AVX2: output_avx2(tiles, position_stride, shift, height, width, ty, tiles_x, plane, accumulate); break;
#endif
            default: output_generic(tiles, position_stride, shift, height, width, ty, tiles_x, plane, accumulate); break;
            }
        }
    }
}
