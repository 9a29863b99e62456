"""Inpainting fixtures: diffusers' StableDiffusionInpaintPipeline with a 9-channel inpainting UNet and with
the ordinary 4-channel tiny UNet (masked-latent blending), plus its mask preprocessing.

Needs the tiny model (Tests/Fixtures/tiny) and img2img/init.png (fixtures_img2img.py). Writes
  tiny-inpaint/        the tiny model with a seeded 9-channel UNet (fp16); the other parts are symlinks to tiny/
  inpaint/mask.png     48x32 gray mask (a disc and a bar, values around the 0.5 threshold at the edges)
  inpaint/mask.safetensors
                       diffusers' mask condition of mask.png and of a colour mask (luma), and torch's
                       nearest interpolation at a ratio that is not whole
  inpaint/<unet>-<sampler>.safetensors   latents and pixels of whole runs
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, PNDMScheduler,
                       StableDiffusionInpaintPipeline, UNet2DConditionModel)
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from transformers import CLIPTextModel, CLIPTokenizer

from common import FIXTURES, save, seed_all
from fixtures_nets_b import tiny_unet

TINY = os.path.join(FIXTURES, "tiny")
INPAINT_MODEL = os.path.join(FIXTURES, "tiny-inpaint")
OUT = os.path.join(FIXTURES, "inpaint")


def inpainting_model() -> None:
    seed_all(21)
    tiny_unet(dict(sample_size=8, in_channels=9, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
                   down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                   up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                   attention_head_dim=4, cross_attention_dim=32, norm_num_groups=8), "tiny-inpaint/unet")
    for part in ("text_encoder", "tokenizer", "vae", "scheduler"):
        link = os.path.join(INPAINT_MODEL, part)
        if not os.path.islink(link):
            os.symlink(os.path.join("..", "tiny", part), link)
    with open(os.path.join(TINY, "model_index.json")) as f:
        index = json.load(f)
    index["_class_name"] = "StableDiffusionInpaintPipeline"
    with open(os.path.join(INPAINT_MODEL, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)


def mask_image() -> Image.Image:
    y, x = np.mgrid[0:32, 0:48].astype(np.float32)
    disc = np.clip(255 * (1 - (np.hypot(x - 18, y - 15) - 9)), 0, 255)  # a soft edge crossing 127/128
    bar = ((x >= 34) & (x < 42) & (y >= 4)).astype(np.float32) * 128
    mask = Image.fromarray(np.maximum(disc, bar).round().astype(np.uint8), "L")
    os.makedirs(OUT, exist_ok=True)
    mask.save(os.path.join(OUT, "mask.png"))
    return mask


def mask_fixtures(mask: Image.Image) -> None:
    processor = VaeImageProcessor(vae_scale_factor=2, do_normalize=False, do_binarize=True, do_convert_grayscale=True)
    rng = np.random.default_rng(4)
    colour = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    colour_mask = Image.fromarray(colour, "RGB")
    sample = torch.from_numpy(rng.normal(size=(1, 2, 13, 9)).astype(np.float32))
    save("inpaint/mask.safetensors", {
        "mask_condition": processor.preprocess(mask),
        "colour_pixels": torch.from_numpy(colour.astype(np.float32)),
        "colour_condition": processor.preprocess(colour_mask, height=6, width=10),
        "nearest_input": sample,
        "nearest_5x4": F.interpolate(sample, size=(5, 4)),
        "nearest_16x24": F.interpolate(processor.preprocess(mask), size=(16, 24)),
    })


def pipelines(mask: Image.Image) -> None:
    image = Image.open(os.path.join(FIXTURES, "img2img", "init.png")).convert("RGB")
    shared = dict(vae=AutoencoderKL.from_pretrained(os.path.join(TINY, "vae")),
                  text_encoder=CLIPTextModel.from_pretrained(os.path.join(TINY, "text_encoder")),
                  tokenizer=CLIPTokenizer.from_pretrained(os.path.join(TINY, "tokenizer")),
                  safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    model_scheduler = PNDMScheduler.from_pretrained(os.path.join(TINY, "scheduler")).config
    samplers = {
        "pndm": lambda: PNDMScheduler.from_config(model_scheduler),
        "euler-a": lambda: EulerAncestralDiscreteScheduler.from_config(model_scheduler),
        "dpm++2m-karras": lambda: DPMSolverMultistepScheduler.from_config(model_scheduler, use_karras_sigmas=True),
    }
    cases = [  # unet folder, sampler, prompt, negative prompt, seed, guidance, steps, strength
        ("tiny-inpaint", "pndm", "a red circle on a blue background", "", 42, 7.5, 8, 1.0),
        ("tiny-inpaint", "euler-a", "a small green triangle", "blurry", 7, 5.0, 8, 0.7),
        ("tiny", "euler-a", "a large yellow square", "", 5, 7.5, 8, 1.0),
        ("tiny", "dpm++2m-karras", "an astronaut riding a horse", "low quality", 3, 1.0, 10, 0.6),
    ]
    for folder, sampler, prompt, negative, seed, guidance, steps, strength in cases:
        unet = UNet2DConditionModel.from_pretrained(os.path.join(FIXTURES, folder, "unet"), torch_dtype=torch.float32)
        pipe = StableDiffusionInpaintPipeline(unet=unet, scheduler=samplers[sampler](), **shared)
        pipe.set_progress_bar_config(disable=True)
        arguments = dict(prompt=prompt, image=image, mask_image=mask, negative_prompt=negative or None,
                         num_inference_steps=steps, guidance_scale=guidance, strength=strength, height=32, width=48)
        latents = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images
        picture = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images[0]
        pixels = torch.from_numpy((picture * 255).round().astype(np.uint8).astype(np.float32))
        name = f"{'unet9' if folder == 'tiny-inpaint' else 'unet4'}-{sampler}"
        save(f"inpaint/{name}.safetensors", {"latents": latents, "pixels": pixels},
             metadata={"model": folder, "prompt": prompt, "negative_prompt": negative, "seed": str(seed),
                       "guidance_scale": str(guidance), "steps": str(steps), "strength": str(strength), "scheduler": sampler})


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    inpainting_model()
    picture = mask_image()
    mask_fixtures(picture)
    pipelines(picture)
