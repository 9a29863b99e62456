"""Reference outputs for the Winograd 3x3 convolution (helper winograd): F.conv2d with stride 1 and
padding 1 on images whose sides are not multiples of the 4x4 output tile, so that edge tiles are
ragged and read the zero padding. The reference is computed in float64 (then stored as float32), so
that the error measured is the Winograd transforms' own. Writes Tests/Fixtures/ops/winograd.safetensors."""
import torch
import torch.nn.functional as F

from common import save, seed_all

# (name, input shape [N, C, H, W], out channels, bias)
CASES = [
    ("one_pixel", (1, 3, 1, 1), 5, True),       # a single pixel: the tile is all padding but one
    ("r3x5", (2, 5, 3, 5), 7, True),            # batch 2, one ragged tile row
    ("r7x9", (1, 17, 7, 9), 6, False),          # 17 channels, no bias
    ("s13", (2, 19, 13, 13), 21, True),         # 13 = 3 tiles + 1 row and column
    ("wide", (1, 6, 5, 70), 9, True),           # 18 tiles per row: more than one 16-tile vector
    ("tall", (1, 4, 21, 2), 3, True),           # half a tile wide
    ("c40", (2, 40, 8, 12), 20, True),          # whole tiles only, channels not a multiple of 16
    ("exact16", (1, 16, 16, 16), 8, False),     # whole tiles, channels a multiple of 16
]


def main():
    tensors = {}
    for name, shape, out, bias in CASES:
        x = torch.randn(*shape)
        w = torch.randn(out, shape[1], 3, 3) / (9 * shape[1]) ** 0.5
        b = torch.randn(out) if bias else None
        tensors[f"{name}.x"], tensors[f"{name}.w"] = x, w
        if b is not None:
            tensors[f"{name}.b"] = b
        tensors[f"{name}.y"] = F.conv2d(x.double(), w.double(), None if b is None else b.double(), stride=1, padding=1)
    # One metadata key: safetensors writes several in no fixed order, and the file should be byte-stable.
    save("ops/winograd.safetensors", tensors, {"cases": " ".join(name for name, *_ in CASES)})


if __name__ == "__main__":
    seed_all(20261203)
    torch.set_num_threads(1)
    main()
