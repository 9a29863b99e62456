#include "sfumato_vector.h"
#include "sfumato_kernels.h"

#include <immintrin.h>
#include <math.h>

/* ---- exp, sigmoid and erf in three widths ------------------------------------------------
 * e^x: x clamped to [-87.33, 88], x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite, two parts),
 * e^r by its Taylor series to degree 7 (truncation < 3e-9), times 2^n; 0 below the range.
 * erf: Abramowitz & Stegun 7.1.26, absolute error < 2e-7. The same formulas as the Swift code,
 * so every variant agrees to rounding. */

#define EXP_LOW (-87.33f)
#define EXP_HIGH 88.0f
#define LOG2E 1.44269504f
#define LN2_HI 0.69314575f
#define LN2_LO 1.4286068e-6f

static inline float exp_scalar(float x) {
    if (x < EXP_LOW) return 0.0f;
    if (x > EXP_HIGH) x = EXP_HIGH;
    float n = nearbyintf(x * LOG2E);
    float r = x - n * LN2_HI - n * LN2_LO;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return ldexpf(p, (int)n);
}

static inline float erf_scalar(float x) {
    float a = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float value = 1.0f - p * t * exp_scalar(-a * a);
    return copysignf(value, x);
}

static inline float gelu_scalar(float x) { return 0.5f * x * (1.0f + erf_scalar(x * 0.70710678f)); }
static inline float silu_scalar(float x) { return x / (1.0f + exp_scalar(-x)); }

#define AVX512 __attribute__((target("avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))

AVX512 static inline __m512 exp512(__m512 x) {
    __m512 clamped = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LOW)), _mm512_set1_ps(EXP_HIGH));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), clamped);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512 result = _mm512_scalef_ps(p, n);
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LOW), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(under, result, _mm512_setzero_ps());
}

AVX512 static inline __m512 erf512(__m512 x) {
    __m512 sign = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
    __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
    __m512 value = _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, _mm512_set1_ps(1.0f));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(value), _mm512_castps_si512(sign)));
}

AVX512 static inline __m512 gelu512(__m512 x) {
    __m512 e = erf512(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678f)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

AVX512 static inline __m512 silu512(__m512 x) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

AVX2 static inline __m256 exp256(__m256 x) {
    __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LOW)), _mm256_set1_ps(EXP_HIGH));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), clamped);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LOW), _CMP_LT_OQ);
    return _mm256_andnot_ps(under, result);
}

AVX2 static inline __m256 erf256(__m256 x) {
    __m256 signmask = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    __m256 sign = _mm256_and_ps(x, signmask);
    __m256 a = _mm256_andnot_ps(signmask, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
    __m256 value = _mm256_fnmadd_ps(_mm256_mul_ps(p, t), e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(value, sign);
}

AVX2 static inline __m256 gelu256(__m256 x) {
    __m256 e = erf256(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

AVX2 static inline __m256 silu256(__m256 x) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* AVX2 tails: a lane mask for the first n < 8 lanes. */
AVX2 static inline __m256i tail_mask256(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- online softmax ----------------------------------------------------------------------- */

static void online_softmax_generic(float *s, long rows, long cols, long ld, float *m, float *l, float *corr) {
    for (long r = 0; r < rows; r++) {
        float *row = s + r * ld;
        float top = m[r];
        for (long c = 0; c < cols; c++) top = row[c] > top ? row[c] : top;
        float sum = 0.0f;
        for (long c = 0; c < cols; c++) {
            row[c] = exp_scalar(row[c] - top);
            sum += row[c];
        }
        corr[r] = m[r] == -INFINITY ? 0.0f : exp_scalar(m[r] - top);
        l[r] = l[r] * corr[r] + sum;
        m[r] = top;
    }
}

AVX512 static void online_softmax_avx512(float *s, long rows, long cols, long ld, float *m, float *l, float *corr) {
    for (long r = 0; r < rows; r++) {
        float *row = s + r * ld;
        __m512 top = _mm512_set1_ps(m[r]);
        long c = 0;
        for (; c + 16 <= cols; c += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(row + c));
        __mmask16 tail = (__mmask16)((1u << (cols - c)) - 1);
        if (c < cols) top = _mm512_max_ps(top, _mm512_mask_loadu_ps(top, tail, row + c));
        float newMax = _mm512_reduce_max_ps(top);
        __m512 shift = _mm512_set1_ps(newMax);
        __m512 sums = _mm512_setzero_ps();
        for (c = 0; c + 16 <= cols; c += 16) {
            __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(row + c), shift));
            _mm512_storeu_ps(row + c, e);
            sums = _mm512_add_ps(sums, e);
        }
        if (c < cols) {
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + c), shift));
            _mm512_mask_storeu_ps(row + c, tail, e);
            sums = _mm512_add_ps(sums, _mm512_maskz_mov_ps(tail, e));
        }
        corr[r] = m[r] == -INFINITY ? 0.0f : exp_scalar(m[r] - newMax);
        l[r] = l[r] * corr[r] + _mm512_reduce_add_ps(sums);
        m[r] = newMax;
    }
}

AVX2 static void online_softmax_avx2(float *s, long rows, long cols, long ld, float *m, float *l, float *corr) {
    for (long r = 0; r < rows; r++) {
        float *row = s + r * ld;
        float top = m[r];
        __m256 tops = _mm256_set1_ps(top);
        long c = 0;
        for (; c + 8 <= cols; c += 8) tops = _mm256_max_ps(tops, _mm256_loadu_ps(row + c));
        float lanes[8];
        _mm256_storeu_ps(lanes, tops);
        for (int i = 0; i < 8; i++) top = lanes[i] > top ? lanes[i] : top;
        for (long t = c; t < cols; t++) top = row[t] > top ? row[t] : top;
        __m256 shift = _mm256_set1_ps(top);
        __m256 sums = _mm256_setzero_ps();
        for (c = 0; c + 8 <= cols; c += 8) {
            __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + c), shift));
            _mm256_storeu_ps(row + c, e);
            sums = _mm256_add_ps(sums, e);
        }
        if (c < cols) {
            __m256i mask = tail_mask256(cols - c);
            __m256 e = exp256(_mm256_sub_ps(_mm256_maskload_ps(row + c, mask), shift));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
            _mm256_maskstore_ps(row + c, mask, e);
            sums = _mm256_add_ps(sums, e);
        }
        _mm256_storeu_ps(lanes, sums);
        float sum = 0.0f;
        for (int i = 0; i < 8; i++) sum += lanes[i];
        corr[r] = m[r] == -INFINITY ? 0.0f : exp_scalar(m[r] - top);
        l[r] = l[r] * corr[r] + sum;
        m[r] = top;
    }
}

void sfumato_online_softmax_block(int variant, float *scores, long rows, long cols, long ld, float *row_max, float *row_sum, float *correction) {
    switch (variant) {
    case SFUMATO_KERNELS_AVX512: online_softmax_avx512(scores, rows, cols, ld, row_max, row_sum, correction); break;
    case SFUMATO_KERNELS_AVX2: online_softmax_avx2(scores, rows, cols, ld, row_max, row_sum, correction); break;
    default: online_softmax_generic(scores, rows, cols, ld, row_max, row_sum, correction); break;
    }
}

void sfumato_scale_rows(float *x, long rows, long cols, long ld, const float *factor) {
    /* Short rows (a head's 40 values): the compiler's own vectorisation suffices. */
    for (long r = 0; r < rows; r++) {
        float f = factor[r];
        float *row = x + r * ld;
        for (long c = 0; c < cols; c++) row[c] *= f;
    }
}

/* ---- GEGLU -------------------------------------------------------------------------------- */

AVX512 static void geglu_avx512(const float *x, float *out, long rows, long width) {
    for (long r = 0; r < rows; r++) {
        const float *a = x + r * 2 * width, *b = a + width;
        float *o = out + r * width;
        long c = 0;
        for (; c + 16 <= width; c += 16)
            _mm512_storeu_ps(o + c, _mm512_mul_ps(_mm512_loadu_ps(a + c), gelu512(_mm512_loadu_ps(b + c))));
        if (c < width) {
            __mmask16 tail = (__mmask16)((1u << (width - c)) - 1);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, a + c), gelu512(_mm512_maskz_loadu_ps(tail, b + c)));
            _mm512_mask_storeu_ps(o + c, tail, v);
        }
    }
}

AVX2 static void geglu_avx2(const float *x, float *out, long rows, long width) {
    for (long r = 0; r < rows; r++) {
        const float *a = x + r * 2 * width, *b = a + width;
        float *o = out + r * width;
        long c = 0;
        for (; c + 8 <= width; c += 8)
            _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(a + c), gelu256(_mm256_loadu_ps(b + c))));
        for (; c < width; c++) o[c] = a[c] * gelu_scalar(b[c]);
    }
}

void sfumato_geglu(int variant, const float *x, float *out, long rows, long width) {
    switch (variant) {
    case SFUMATO_KERNELS_AVX512: geglu_avx512(x, out, rows, width); break;
    case SFUMATO_KERNELS_AVX2: geglu_avx2(x, out, rows, width); break;
    default:
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < width; c++) out[r * width + c] = x[r * 2 * width + c] * gelu_scalar(x[r * 2 * width + width + c]);
    }
}

/* ---- normalisation ------------------------------------------------------------------------ */

AVX512 static void normalize_avx512(const float *x, float *out, long count, float mean, float scale, float shift, int silu) {
    /* (x - mean) first: folding the mean into the shift would cancel when |mean| >> std. */
    __m512 m = _mm512_set1_ps(mean), s = _mm512_set1_ps(scale), b = _mm512_set1_ps(shift);
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 y = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), m), s, b);
        _mm512_storeu_ps(out + i, silu ? silu512(y) : y);
    }
    if (i < count) {
        __mmask16 tail = (__mmask16)((1u << (count - i)) - 1);
        __m512 y = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), m), s, b);
        _mm512_mask_storeu_ps(out + i, tail, silu ? silu512(y) : y);
    }
}

AVX2 static void normalize_avx2(const float *x, float *out, long count, float mean, float scale, float shift, int silu) {
    __m256 m = _mm256_set1_ps(mean), s = _mm256_set1_ps(scale), b = _mm256_set1_ps(shift);
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 y = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), s, b);
        _mm256_storeu_ps(out + i, silu ? silu256(y) : y);
    }
    for (; i < count; i++) {
        float y = (x[i] - mean) * scale + shift;
        out[i] = silu ? silu_scalar(y) : y;
    }
}

void sfumato_normalize(int variant, const float *x, float *out, long count, float mean, float scale, float shift, int silu) {
    switch (variant) {
    case SFUMATO_KERNELS_AVX512: normalize_avx512(x, out, count, mean, scale, shift, silu); break;
    case SFUMATO_KERNELS_AVX2: normalize_avx2(x, out, count, mean, scale, shift, silu); break;
    default:
        for (long i = 0; i < count; i++) {
            float y = (x[i] - mean) * scale + shift;
            out[i] = silu ? silu_scalar(y) : y;
        }
    }
}

/* Sums go 1024 elements at a time into float lanes, each block added in double: accurate for
 * the million-element groups of a 512x512 VAE decode. */
#define SUM_BLOCK 1024

AVX512 static void sum_avx512(const float *x, long count, float mean, int squares, double *total) {
    __m512 m = _mm512_set1_ps(mean);
    double result = 0.0;
    for (long start = 0; start < count; start += SUM_BLOCK) {
        long end = start + SUM_BLOCK < count ? start + SUM_BLOCK : count;
        __m512 acc = _mm512_setzero_ps();
        long i = start;
        for (; i + 16 <= end; i += 16) {
            __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + i), m);
            acc = squares ? _mm512_fmadd_ps(v, v, acc) : _mm512_add_ps(acc, v);
        }
        if (i < end) {
            __mmask16 tail = (__mmask16)((1u << (end - i)) - 1);
            __m512 v = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + i), m);
            acc = squares ? _mm512_fmadd_ps(v, v, acc) : _mm512_add_ps(acc, v);
        }
        result += (double)_mm512_reduce_add_ps(acc);
    }
    *total = result;
}

AVX2 static void sum_avx2(const float *x, long count, float mean, int squares, double *total) {
    __m256 m = _mm256_set1_ps(mean);
    double result = 0.0;
    for (long start = 0; start < count; start += SUM_BLOCK) {
        long end = start + SUM_BLOCK < count ? start + SUM_BLOCK : count;
        __m256 acc = _mm256_setzero_ps();
        long i = start;
        for (; i + 8 <= end; i += 8) {
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
            acc = squares ? _mm256_fmadd_ps(v, v, acc) : _mm256_add_ps(acc, v);
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (int k = 0; k < 8; k++) result += (double)lanes[k];
        for (; i < end; i++) {
            double d = (double)(x[i] - mean);
            result += squares ? d * d : d;
        }
    }
    *total = result;
}

static void sum_generic(const float *x, long count, float mean, int squares, double *total) {
    double result = 0.0;
    for (long i = 0; i < count; i++) {
        double d = (double)(x[i] - mean);
        result += squares ? d * d : d;
    }
    *total = result;
}

static void sum_any(int variant, const float *x, long count, float mean, int squares, double *total) {
    switch (variant) {
    case SFUMATO_KERNELS_AVX512: sum_avx512(x, count, mean, squares, total); break;
    case SFUMATO_KERNELS_AVX2: sum_avx2(x, count, mean, squares, total); break;
    default: sum_generic(x, count, mean, squares, total); break;
    }
}

void sfumato_sum_deviations(int variant, const float *x, long count, float shift, int squares, double *sum) {
    sum_any(variant, x, count, shift, squares, sum);
}
