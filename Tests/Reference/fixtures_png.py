"""PNG reader fixtures written by hand (zlib + struct, no Pillow) and diffusers' image postprocessing.

Tests/Fixtures/png/*.png: small images in colour types the reader must convert to RGB, plus
broken files. expected.json maps each good file to its width, height and RGB bytes (transparency
composited over white, the reader's documented rule).
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

    def over_white(c, a):  # round((c * a + 255 * (255 - a)) / 255); an exact .5 cannot occur
        return (c * a + 255 * (255 - a) + 127) // 255

    def composite(rows):  # rows of (r, g, b, a) -> rows of (r, g, b)
        return [[tuple(over_white(c, p[3]) for c in p[:3]) for p in row] for row in rows]

    rgba = [[grid[y][x] + (alpha(x, y),) for x in range(W)] for y in range(H)]
    write("rgba.png", png(W, H, 8, 6, [bytes(v for p in row for v in p) for row in rgba]))
    expect("rgba.png", composite(rgba))
    # 16-bit RGBA with samples v * 257: reduced exactly to v, then composited.
    write("rgba16.png", png(W, H, 16, 6, [b"".join(struct.pack(">H", v * 257) for p in row for v in p) for row in rgba]))
    expect("rgba16.png", composite(rgba))

    gray = [[(x * 40 + y * 9) % 256 for x in range(W)] for y in range(H)]
    write("gray.png", png(W, H, 8, 0, [bytes(gray[y]) for y in range(H)]))
    expect("gray.png", [[(g, g, g) for g in row] for row in gray])

    gray_alpha = [[(gray[y][x],) * 3 + (alpha(x, y),) for x in range(W)] for y in range(H)]
    write("gray_alpha.png", png(W, H, 8, 4, [bytes(v for x in range(W) for v in (gray[y][x], alpha(x, y))) for y in range(H)]))
    expect("gray_alpha.png", composite(gray_alpha))
    write("gray16.png", png(W, H, 16, 0, [b"".join(struct.pack(">H", g * 257) for g in gray[y]) for y in range(H)]))
    expect("gray16.png", [[(g, g, g) for g in row] for row in gray])
    # 2-bit gray, packed four pixels a byte (rows padded to whole bytes): levels 0, 85, 170, 255.
    levels = [[(x + y) % 4 for x in range(W)] for y in range(H)]

    def pack2(row):
        padded = row + [0] * (-len(row) % 4)
        return bytes((padded[i] << 6) | (padded[i + 1] << 4) | (padded[i + 2] << 2) | padded[i + 3] for i in range(0, len(padded), 4))
    write("gray2.png", png(W, H, 2, 0, [pack2(levels[y]) for y in range(H)]))
    expect("gray2.png", [[(v * 85,) * 3 for v in row] for row in levels])

    palette = [(10, 20, 30), (200, 100, 0), (0, 255, 128), (255, 255, 255)]
    index = [[(x + 2 * y) % 4 for x in range(W)] for y in range(H)]
    plte = chunk(b"PLTE", bytes(v for p in palette for v in p))
    write("palette.png", png(W, H, 8, 3, [bytes(index[y]) for y in range(H)], plte))
    expect("palette.png", [[palette[i] for i in row] for row in index])
    # Transparent palette entries (tRNS: entry 0 clear, entry 1 half) are composited over white.
    trns = [0, 128, 255, 255]
    write("palette_trns.png", png(W, H, 8, 3, [bytes(index[y]) for y in range(H)], plte + chunk(b"tRNS", bytes(trns[:2]))))
    expect("palette_trns.png", composite([[palette[i] + (trns[i],) for i in row] for row in index]))
    # 4-bit palette, two pixels a byte.

    def pack4(row):
        padded = row + [0] * (len(row) % 2)
        return bytes((padded[i] << 4) | padded[i + 1] for i in range(0, len(padded), 2))
    write("palette4.png", png(W, H, 4, 3, [pack4(index[y]) for y in range(H)], plte))
    expect("palette4.png", [[palette[i] for i in row] for row in index])

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
