"""Synthetic training data of the default model: one plain shape on a plain background, with a caption.

Every image is 64x64 RGB: a circle, square or triangle in one of eight named colours on a background of
another of those colours, small or large, anywhere with a margin from the border. Captions come from one
grammar: "a|an [small |large ]<colour> <shape> on a|an <colour> background" (the size word is left out in a
third of the captions so prompts without it work too). Drawing is plain numpy, no anti-aliasing, so the
palette below is exactly the set of colours in the data; evaluate_shapes.py scores against it.
Batches are a pure function of (seed, index): a resumed run sees the same data as an uninterrupted one.
"""
import numpy as np

SIZE = 64

# The palette of the data and of the evaluation (RGB, 0-255).
PALETTE = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "orange": (245, 140, 30),
    "purple": (140, 60, 190),
}
COLOURS = list(PALETTE)
SHAPES = ["circle", "square", "triangle"]
SIZES = {"small": (20, 27), "large": (34, 47)}  # side of the shape's bounding box in pixels, [low, high)
MARGIN = 4  # pixels between the shape and the border, so the border shows only background

_YS, _XS = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5  # pixel centres


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def caption(colour, shape, background, size=None):
    first = size or colour
    size_word = f"{size} " if size else ""
    return f"{_article(first)} {size_word}{colour} {shape} on {_article(background)} {background} background"


def vocabulary_corpus():
    """Every word the grammar can produce (the tokenizer is trained on these)."""
    return [caption(c, s, b, z) for c in COLOURS for s in SHAPES for b in COLOURS for z in [None, *SIZES]]


def shape_mask(shape, left, top, side):
    """Boolean [SIZE, SIZE] mask of `shape` filling the square box at (left, top) with the given side."""
    x = (_XS - left) / side  # 0..1 across the box
    y = (_YS - top) / side
    inside = (x >= 0) & (x < 1) & (y >= 0) & (y < 1)
    if shape == "square":
        return inside
    if shape == "circle":
        return (x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.25
    if shape == "triangle":  # apex up, base along the bottom of the box
        return inside & (np.abs(x - 0.5) <= 0.5 * y)
    raise ValueError(f"unknown shape {shape!r}")


def draw(colour, shape, background, side, left, top):
    """uint8 [SIZE, SIZE, 3] image."""
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    image[:] = PALETTE[background]
    image[shape_mask(shape, left, top, side)] = PALETTE[colour]
    return image


def sample(rng):
    """One random (image, caption) pair from a numpy Generator."""
    colour, background = rng.choice(len(COLOURS), size=2, replace=False)
    colour, background = COLOURS[colour], COLOURS[background]
    shape = SHAPES[rng.integers(len(SHAPES))]
    size = list(SIZES)[rng.integers(len(SIZES))]
    side = int(rng.integers(*SIZES[size]))
    left, top = (int(v) for v in rng.integers(MARGIN, SIZE - MARGIN - side + 1, size=2))
    said_size = size if rng.random() < 2 / 3 else None
    return draw(colour, shape, background, side, left, top), caption(colour, shape, background, said_size)


def batch(seed, index, count):
    """Batch number `index` of the stream `seed`: uint8 images [count, SIZE, SIZE, 3] and captions."""
    rng = np.random.default_rng([seed, index])
    pairs = [sample(rng) for _ in range(count)]
    return np.stack([p[0] for p in pairs]), [p[1] for p in pairs]


if __name__ == "__main__":  # writes a contact sheet to look at: python Models/shapes_data.py out.png
    import sys

    from PIL import Image

    images, captions = batch(0, 0, 64)
    sheet = images.reshape(8, 8, SIZE, SIZE, 3).transpose(0, 2, 1, 3, 4).reshape(8 * SIZE, 8 * SIZE, 3)
    Image.fromarray(sheet).save(sys.argv[1] if len(sys.argv) > 1 else "shapes.png")
    print("\n".join(captions[:8]))
