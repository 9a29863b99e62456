#ifndef SFUMATO_WINOGRAD_H
#define SFUMATO_WINOGRAD_H

#include <stddef.h>

/* Winograd F(4x4, 3x3) transforms for a 3x3, stride 1, padding 1 convolution, built on the
   points 0, 1, -1, 2, -1/2 (about 2.5 times more accurate in float32 than 0, +-1, +-2).

   Output tile (ty, tx) covers rows 4ty..4ty+3 and columns 4tx..4tx+3; an image of width W has
   ceil(W / 4) tiles per tile row. A transformed tile has 36 positions p = 6a + b (a along y).
   Transformed data is laid out position-major, so that each position is one GEMM operand:
   element (p, channel, tile) sits at p * position_stride + channel * channel_stride + tile, where
   tile = (ty - tile_row_begin) * ceil(W / 4) + tx counts the tiles of the given tile rows. */

/* u[p * position_stride + o * channels + c] = (G g G^T)[p], g = weight[o][c] (3x3), for o < out_channels. */
void sfumato_winograd_f43_weights(int variant, const float *weight, int out_channels, int channels,
                                  float *u, ptrdiff_t position_stride);

/* v = B^T d B for each tile of tile rows [tile_row_begin, tile_row_end) of each channel, where d is
   the 6x6 input patch around the tile (rows 4ty-1..4ty+4, columns 4tx-1..4tx+4, zero outside the
   image). image: [channels][height][width].
   With `affine` (3 floats per channel: mean, scale, shift) each input value x is first replaced by
   (x - mean) * scale + shift, then by its SiLU when silu != 0 — a group norm applied on the fly, so
   the normalised image is never stored; the zero padding stays zero. With upsample != 0 the image
   is the nearest-neighbour 2x upsampling of `image`, which then holds [channels][height/2][width/2]
   (height and width even): the upsampled image is never stored either. */
void sfumato_winograd_f43_input(int variant, const float *image, int channels, int height, int width,
                                int tile_row_begin, int tile_row_end,
                                float *v, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                                const float *affine, int silu, int upsample);

/* output[o][y][x] = (A^T m A)[y - 4ty][x - 4tx] + bias[o] over the given tile rows, clipped to the
   image; m is laid out as v is. output: [out_channels][height][width]; bias may be NULL. With
   accumulate != 0 the result is added to what output holds (a residual connection in place). */
void sfumato_winograd_f43_output(int variant, const float *m, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                                 const float *bias, int out_channels, int height, int width,
                                 int tile_row_begin, int tile_row_end, float *output, int accumulate);

#endif
