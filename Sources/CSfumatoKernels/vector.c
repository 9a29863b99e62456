#include "sfumato_vector.h"
#include "sfumato_kernels.h"

#include "simd_math.h"

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
