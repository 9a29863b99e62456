#ifndef SFUMATO_VECTOR_H
#define SFUMATO_VECTOR_H

/* Hot elementwise loops in AVX-512 and AVX2+FMA variants picked at run time, with a portable
 * fallback. The library builds at the baseline x86-64 target (no unsafeFlags), so code that needs
 * wide vectors lives here behind function target attributes. */

#ifdef __cplusplus
extern "C" {
#endif

/* Each kernel takes the code path (SFUMATO_KERNELS_* of sfumato_kernels.h) as its first
 * argument; the caller makes sure the CPU runs it. */

/* One key block of an online softmax over `rows` rows of `cols` scores, `ld` apart, in place:
 * the running maximum m and sum l of each row are updated, the scores become exp(s - m_new), and
 * correction[r] = exp(m_old - m_new) is what the row's partial output must be multiplied by. */
void sfumato_online_softmax_block(int variant, float *scores, long rows, long cols, long ld,
                                  float *row_max, float *row_sum, float *correction);

/* x[r * ld + c] *= factor[r] for r < rows, c < cols. */
void sfumato_scale_rows(float *x, long rows, long cols, long ld, const float *factor);

/* GEGLU rows: out[r, c] = a[c] * gelu(b[c]) with a = x[r, 0..<width], b = x[r, width..<2 width],
 * gelu exact (erf form). */
void sfumato_geglu(int variant, const float *x, float *out, long rows, long width);

/* out[i] = ((x[i] - mean) * scale + shift), then SiLU when silu != 0; in and out may alias. */
void sfumato_normalize(int variant, const float *x, float *out, long count, float mean, float scale, float shift, int silu);

/* *sum = the sum over count floats of (x[i] - shift), or of its square when squares != 0: float
 * lanes over blocks of 1024, each block added in double. */
void sfumato_sum_deviations(int variant, const float *x, long count, float shift, int squares, double *sum);

#ifdef __cplusplus
}
#endif

#endif
