"""Quality score of the default model: does it paint the asked colours where they belong?

Generates 64x64 images with diffusers' StableDiffusionPipeline from Models/sfumato-shapes for prompts
"a <colour> <shape> on a <background> background" and fixed seeds, and scores each image by this rule:

  1. Label every pixel with the nearest (Euclidean RGB) colour of PALETTE, the eight colours of the data
     (shapes_data.PALETTE, repeated here so other implementations can copy it):
       red (220,40,40)  green (40,170,60)  blue (40,80,220)  yellow (240,220,40)
       white (245,245,245)  black (20,20,20)  orange (245,140,30)  purple (140,60,190)
  2. The most frequent label among the border pixels (the outer BORDER = 2 pixel rows and columns) must be
     the asked background colour.
  3. Over the whole image, the most frequent label other than the background must be the asked shape
     colour, covering at least MIN_SHAPE_FRACTION = 3% of the pixels (the smallest shape of the data
     covers about 5%).
An image passes when 2 and 3 hold; the shape itself is not judged. Prints the pass rate.

    .venv/bin/python Models/evaluate_shapes.py            # 24 prompts x 2 seeds
    .venv/bin/python Models/evaluate_shapes.py --all      # every colour/shape/background, seed 0
"""
import argparse
import itertools
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes_data  # noqa: E402

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
assert PALETTE == shapes_data.PALETTE, "the scored palette must be the data's palette"
NAMES = list(PALETTE)
BORDER = 2
MIN_SHAPE_FRACTION = 0.03


def labels(image):
    """Index into NAMES of the nearest palette colour, per pixel of a uint8 [H, W, 3] image."""
    colours = np.array(list(PALETTE.values()), np.float32)
    distance = ((image[:, :, None, :].astype(np.float32) - colours) ** 2).sum(-1)
    return distance.argmin(-1)


def score(image, colour, background):
    """(passed, found background, found shape colour, its fraction of the image) for a uint8 [H, W, 3] image."""
    label = labels(image)
    ring = np.ones(label.shape, bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    found_background = int(np.bincount(label[ring], minlength=len(NAMES)).argmax())
    counts = np.bincount(label.ravel(), minlength=len(NAMES))
    counts[found_background] = 0
    found_colour = int(counts.argmax())
    fraction = counts[found_colour] / label.size
    passed = (NAMES[found_background] == background and NAMES[found_colour] == colour
              and fraction >= MIN_SHAPE_FRACTION)
    return passed, NAMES[found_background], NAMES[found_colour], float(fraction)


def cases(sweep_all, seeds):
    """(colour, shape, background, seed) to generate."""
    combinations = [(c, s, b) for c, s, b in itertools.product(shapes_data.COLOURS, shapes_data.SHAPES,
                                                                shapes_data.COLOURS) if c != b]
    if not sweep_all:
        pick = np.random.default_rng(0).choice(len(combinations), size=24, replace=False)
        combinations = [combinations[i] for i in sorted(pick)]
    return [(c, s, b, seed) for c, s, b in combinations for seed in seeds]


def check_data():
    """The rule must accept every picture of the data, including the smallest triangles."""
    images, captions = shapes_data.batch(0, 0, 2000)
    failures = 0
    for image, text in zip(images, captions):
        words = text.split()
        colour, background = words[words.index("on") - 2], words[-2]
        ok, *found = score(image, colour, background)
        if not ok:
            failures += 1
            if failures <= 10:
                print(f"FAIL {text!r}: {found}")
    print(f"data check: {len(images) - failures}/{len(images)} training images pass")
    if failures:
        sys.exit(1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(HERE, "sfumato-shapes"))
    p.add_argument("--all", action="store_true", help="every colour/shape/background combination")
    p.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 (0 with --all)")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--save", help="folder for the images and a contact sheet")
    p.add_argument("--verbose", action="store_true", help="print every failure")
    p.add_argument("--require", type=float, help="exit 1 when the pass rate is below this fraction")
    p.add_argument("--check-data", action="store_true", help="score 2000 training images instead (must all pass)")
    args = p.parse_args(argv)
    if args.check_data:
        return check_data()

    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    torch.set_num_threads(args.threads)
    diffusers_logging.disable_progress_bar()
    pipeline = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    todo = cases(args.all, args.seeds or ([0] if args.all else [0, 1]))
    images = []
    for start in range(0, len(todo), args.batch):
        chunk = todo[start:start + args.batch]
        prompts = [shapes_data.caption(c, s, b) for c, s, b, _ in chunk]
        generators = [torch.Generator().manual_seed(seed) for *_, seed in chunk]
        out = pipeline(prompts, height=64, width=64, num_inference_steps=args.steps, guidance_scale=args.guidance,
                       generator=generators, output_type="np").images
        images.extend((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
    passed = 0
    for (colour, shape, background, seed), image in zip(todo, images):
        ok, found_background, found_colour, fraction = score(image, colour, background)
        passed += ok
        if args.verbose and not ok:
            print(f"FAIL seed {seed}: {shapes_data.caption(colour, shape, background)!r} -> background "
                  f"{found_background}, shape colour {found_colour} ({fraction:.1%})")
    if args.save:
        from PIL import Image

        os.makedirs(args.save, exist_ok=True)
        for (colour, shape, background, seed), image in zip(todo, images):
            Image.fromarray(image).save(os.path.join(args.save, f"{colour}-{shape}-on-{background}-{seed}.png"))
        columns = 12
        rows = -(-len(images) // columns)
        sheet = np.zeros((rows * 64, columns * 64, 3), np.uint8)
        for i, image in enumerate(images):
            sheet[(i // columns) * 64:(i // columns + 1) * 64, (i % columns) * 64:(i % columns + 1) * 64] = image
        Image.fromarray(sheet).save(os.path.join(args.save, "sheet.png"))
    rate = passed / len(todo)
    print(f"pass rate {passed}/{len(todo)} = {rate:.1%} ({args.steps} steps, guidance {args.guidance:g}, {args.model})")
    if args.require is not None and rate < args.require:
        sys.exit(1)


if __name__ == "__main__":
    main()
