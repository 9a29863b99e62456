"""Fixtures for the embedded default model (Models/sfumato-shapes): the quality rule's cases and
diffusers' own images for two of them, so the Swift tests check Sfumato draws what diffusers draws
and scores as Models/evaluate_shapes.py scores."""
import json
import os
import sys

import numpy as np
import torch
from diffusers import StableDiffusionPipeline

from common import FIXTURES, ROOT, save

sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "Models"))
import evaluate_shapes  # noqa: E402
import shapes_data  # noqa: E402

MODEL = os.path.join(os.path.dirname(ROOT), "Models", "sfumato-shapes")
STEPS, GUIDANCE = 25, 5.0

cases = [dict(prompt=shapes_data.caption(c, s, b), colour=c, background=b, seed=seed)
         for c, s, b, seed in evaluate_shapes.cases(False, [0, 1])]
rule = dict(palette=evaluate_shapes.PALETTE, border=evaluate_shapes.BORDER,
            min_shape_fraction=evaluate_shapes.MIN_SHAPE_FRACTION, steps=STEPS, guidance_scale=GUIDANCE, cases=cases)
os.makedirs(os.path.join(FIXTURES, "default-model"), exist_ok=True)
with open(os.path.join(FIXTURES, "default-model", "cases.json"), "w") as f:
    json.dump(rule, f, indent=1)

pipe = StableDiffusionPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
pipe.set_progress_bar_config(disable=True)
for index, case in enumerate(cases[:2]):
    image = pipe(case["prompt"], num_inference_steps=STEPS, guidance_scale=GUIDANCE, width=64, height=64,
                 generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="np").images[0]
    pixels = torch.from_numpy((image * 255).round().astype(np.uint8).astype(np.float32))
    save(f"default-model/diffusers-{index}.safetensors", {"pixels": pixels},
         metadata={"prompt": case["prompt"], "seed": str(case["seed"])})
