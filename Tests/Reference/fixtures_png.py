"""PNG reader fixtures written by hand (zlib + struct, no Pillow) and diffusers' image postprocessing.

Tests/Fixtures/png/*.png: small images in colour types the reader must convert to RGB, plus
broken files. expected.json maps each good file to its width, height and RGB bytes (alpha dropped).
Tests/Fixtures/png/postprocess.safetensors: decoded tensors and the uint8 pixels diffusers makes of them.
"""
import json
import os
import struct
import zlib

import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor

from common import FIXTURES, save

OUT = os.path.join(FIXTURES, "png")
W, H = 5, 4


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, height, depth, colour, rows, extra=b"", interlace=0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    raw = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def pixel(x, y):
    return ((x * 50 + y * 7) % 256, (y * 60 + 3) % 256, (x * y * 13 + 200) % 256)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    print(f"wrote png/{name} ({len(data)} bytes)")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    expected = {}

    def expect(name, rgb_rows):
        expected[name] = {"width": W, "height": H, "rgb": [v for row in rgb_rows for p in row for v in p]}

    grid = [[pixel(x, y) for x in range(W)] for y in range(H)]
    alpha = lambda x, y: (x * 60 + y * 3) % 256  # noqa: E731

    write("rgba.png", png(W, H, 8, 6, [bytes(v for x in range(W) for v in grid[y][x] + (alpha(x, y),)) for y in range(H)]))
    expect("rgba.png", grid)

    gray = [[(x * 40 + y * 9) % 256 for x in range(W)] for y in range(H)]
    write("gray.png", png(W, H, 8, 0, [bytes(gray[y]) for y in range(H)]))
    expect("gray.png", [[(g, g, g) for g in row] for row in gray])

    write("gray_alpha.png", png(W, H, 8, 4, [bytes(v for x in range(W) for v in (gray[y][x], alpha(x, y))) for y in range(H)]))
    expect("gray_alpha.png", [[(g, g, g) for g in row] for row in gray])

    palette = [(10, 20, 30), (200, 100, 0), (0, 255, 128), (255, 255, 255)]
    index = [[(x + 2 * y) % 4 for x in range(W)] for y in range(H)]
    plte = chunk(b"PLTE", bytes(v for p in palette for v in p))
    write("palette.png", png(W, H, 8, 3, [bytes(index[y]) for y in range(H)], plte))
    expect("palette.png", [[palette[i] for i in row] for row in index])
    # Transparent palette entries: the colour stays, the alpha is dropped.
    write("palette_trns.png", png(W, H, 8, 3, [bytes(index[y]) for y in range(H)], plte + chunk(b"tRNS", bytes([0, 128]))))
    expect("palette_trns.png", [[palette[i] for i in row] for row in index])

    # 16-bit samples v * 257 reduce exactly to v.
    write("rgb16.png", png(W, H, 16, 2, [b"".join(struct.pack(">H", v * 257) for x in range(W) for v in grid[y][x]) for y in range(H)]))
    expect("rgb16.png", grid)

    # Adam7 interlaced RGB: passes of the 5x4 image, each with its own filter bytes.
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs, ys = range(x0, W, dx), range(y0, H, dy)
        if len(xs) and len(ys):
            for y in ys:
                raw += b"\x00" + bytes(v for x in xs for v in grid[y][x])
    ihdr = struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 1)
    write("interlaced.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    expect("interlaced.png", grid)

    # Broken files.
    good = png(W, H, 8, 2, [bytes(v for x in range(W) for v in grid[y][x]) for y in range(H)])
    write("truncated.png", good[: len(good) - 30])
    huge = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    write("huge.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", huge) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    bad_crc = bytearray(good)
    bad_crc[29] ^= 0xFF  # last byte of the IHDR CRC
    write("bad_crc.png", bytes(bad_crc))

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=0)

    # diffusers postprocess: random values beyond [-1, 1] to exercise the clamp, plus values that land
    # exactly on .5 after * 255 (round half to even) and their float neighbours.
    torch.manual_seed(3)
    decoded = torch.randn(1, 3, 8, 8) * 0.8
    ties = torch.tensor([(2 * (k + 0.5) / 255 - 1) for k in range(0, 255, 17)], dtype=torch.float32)
    flat = decoded.view(-1)
    flat[: ties.numel()] = ties
    flat[ties.numel(): 2 * ties.numel()] = torch.nextafter(ties, torch.tensor(2.0))
    flat[2 * ties.numel(): 3 * ties.numel()] = torch.nextafter(ties, torch.tensor(-2.0))
    flat[-4:] = torch.tensor([-1.0, 1.0, -3.0, 3.0])
    processor = VaeImageProcessor()
    pixels = processor.postprocess(decoded, output_type="np")  # [1, H, W, 3] float32 in [0, 1]
    uint8 = (pixels * 255).round().astype("uint8")  # exactly numpy_to_pil's conversion
    # Inverse (img2img input): pil_to_numpy's / 255 then normalize, on the same bytes.
    back = processor.normalize(processor.numpy_to_pt(uint8.astype(np.float32) / 255.0))
    save("png/postprocess.safetensors", {
        "decoded": decoded,
        "pixels_hwc": torch.from_numpy(uint8[0].astype(np.float32)),
        "reencoded": back,
    })


if __name__ == "__main__":
    main()
