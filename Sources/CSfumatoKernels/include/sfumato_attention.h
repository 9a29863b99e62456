#ifndef SFUMATO_ATTENTION_H
#define SFUMATO_ATTENTION_H

/* Fused attention for one head and a block of query rows, in AVX2 + FMA: the scores of 16 query
 * rows against a block of keys stay in L1, an online softmax runs on them there, and both products
 * are register-tiled 6 x 16 loops. Head sizes of 40 are too small for a BLAS call to amortise
 * packing the score block, which is what limits the OpenBLAS-blocked path on AVX2 machines. */

#ifdef __cplusplus
extern "C" {
#endif

/* Floats of scratch that sfumato_attention_rows_avx2 and _avx512 need. */
long sfumato_attention_scratch_floats(long rows, long key_block, long head_size);

/* out[r, 0..<d] = softmax_c(scale * q[r] . k[c]) . v[c] for r < rows, over keys c < keys
 * (rows `ldq`, `ldk`, `ldv`, `ldo` floats apart). causal_first_row >= 0: row r is query number
 * causal_first_row + r and sees keys 0 ... causal_first_row + r only; -1: every key.
 * Only for CPUs with AVX2 and FMA. */
void sfumato_attention_rows_avx2(const float *q, long ldq, const float *k, long ldk, const float *v, long ldv,
                                 float *out, long ldo, long rows, long keys, long head_size, float scale,
                                 long causal_first_row, long key_block, float *scratch);

/* The same for CPUs with AVX-512F, in 32-row tiles. */
void sfumato_attention_rows_avx512(const float *q, long ldq, const float *k, long ldk, const float *v, long ldv,
                                   float *out, long ldo, long rows, long keys, long head_size, float scale,
                                   long causal_first_row, long key_block, float *scratch);

#ifdef __cplusplus
}
#endif

#endif
