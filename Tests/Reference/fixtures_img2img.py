"""Image-to-image fixtures: diffusers' add_noise and get_timesteps for every sampler, the VAE's seeded
latent sample, and StableDiffusionImg2ImgPipeline on the tiny model.

Needs the tiny model of fixtures_nets_a.py, fixtures_nets_b.py and fixtures_pipeline.py (Tests/Fixtures/tiny).
Writes Tests/Fixtures/img2img/:
  init.png                  the 48x32 picture the pipeline cases start from (also used by cli-smoke.sh)
  schedulers.safetensors    per sampler and (steps, strength): timesteps left, add_noise, then the
                            remaining steps on stored model outputs (stochastic noise from a seeded generator)
  vae_sample.safetensors    latent_dist.mean and latent_dist.sample(generator) of init.png
  <sampler>.safetensors     latents and pixels of a whole img2img run
  forward.safetensors       the forward process (DDPMScheduler.add_noise) at train timesteps, for `sfumato noise`
  resize_source.png, resize_WxH.png
                            Pillow's Lanczos resize (what diffusers' VaeImageProcessor.resize does) of a
                            61x45 picture to the multiples of 8 below and to each axis alone (`--resize`)
"""
import json
import os
import types

import numpy as np
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                       EulerAncestralDiscreteScheduler, EulerDiscreteScheduler, LMSDiscreteScheduler, PNDMScheduler,
                       StableDiffusionImg2ImgPipeline, UNet2DConditionModel)
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from transformers import CLIPTextModel, CLIPTokenizer

from common import FIXTURES, save

TINY = os.path.join(FIXTURES, "tiny")
OUT = os.path.join(FIXTURES, "img2img")
# SD 1.5's scheduler_config.json as downloaded (no timestep_spacing: each class takes its own default).
with open(os.path.join(FIXTURES, "schedulers_a", "sd15_scheduler_config.json")) as f:
    SD15 = json.load(f)

SAMPLERS = {  # our --scheduler name: how diffusers users switch to it
    "ddim": lambda c: DDIMScheduler.from_config(c),
    "pndm": lambda c: PNDMScheduler.from_config(c),
    "ddpm": lambda c: DDPMScheduler.from_config(c),
    "lms": lambda c: LMSDiscreteScheduler.from_config(c),
    "euler": lambda c: EulerDiscreteScheduler.from_config(c),
    "euler-a": lambda c: EulerAncestralDiscreteScheduler.from_config(c),
    "dpm++2m": lambda c: DPMSolverMultistepScheduler.from_config(c),
    "dpm++2m-karras": lambda c: DPMSolverMultistepScheduler.from_config(c, use_karras_sigmas=True),
}


def get_timesteps(scheduler, steps, strength):
    """diffusers' own StableDiffusionImg2ImgPipeline.get_timesteps (it reads only self.scheduler)."""
    scheduler.set_timesteps(steps)
    holder = types.SimpleNamespace(scheduler=scheduler)
    return StableDiffusionImg2ImgPipeline.get_timesteps(holder, steps, strength, "cpu")


def schedulers() -> None:
    tensors, cases = {}, []
    data = torch.Generator().manual_seed(2024)
    for name, make in SAMPLERS.items():
        for steps, strength in [(10, 0.55), (6, 1.0), (8, 0.3)]:
            key = f"{name}/{steps}/{strength}"
            scheduler = make(SD15)
            timesteps, _ = get_timesteps(scheduler, steps, strength)
            original = torch.randn(1, 4, 4, 4, generator=data)
            noise = torch.randn(1, 4, 4, 4, generator=data)
            sample = scheduler.add_noise(original, noise, timesteps[:1])
            tensors.update({f"{key}/timesteps": timesteps.float(), f"{key}/original": original,
                            f"{key}/noise": noise, f"{key}/noisy": sample.clone()})
            step_random = torch.Generator().manual_seed(7)
            for index, t in enumerate(timesteps):
                model_input = scheduler.scale_model_input(sample, t)
                model_output = torch.randn(1, 4, 4, 4, generator=data)
                extra = {"generator": step_random} if name in ("ddpm", "euler-a") else {}
                sample = scheduler.step(model_output, t, sample, **extra).prev_sample
                tensors.update({f"{key}/{index}/model_input": model_input, f"{key}/{index}/model_output": model_output})
            tensors[f"{key}/final"] = sample
            cases.append({"scheduler": name, "steps": steps, "strength": strength, "key": key})
    save("img2img/schedulers.safetensors", tensors, metadata={"cases": json.dumps(cases), "step_seed": "7"})


def forward() -> None:
    scheduler = DDPMScheduler.from_config(SD15)
    data = torch.Generator().manual_seed(99)
    original, noise = torch.randn(1, 3, 8, 8, generator=data), torch.randn(1, 3, 8, 8, generator=data)
    tensors = {"original": original, "noise": noise}
    for t in [0, 50, 100, 250, 500, 999]:
        tensors[f"t{t}"] = scheduler.add_noise(original, noise, torch.tensor([t]))
    save("img2img/forward.safetensors", tensors)


def init_image() -> Image.Image:
    """A smooth picture with a few edges: gradients and a disc, so the VAE sees structure."""
    y, x = np.mgrid[0:32, 0:48].astype(np.float32)
    disc = ((x - 30) ** 2 + (y - 14) ** 2 < 81).astype(np.float32)
    rgb = np.stack([x / 47 * 200 + disc * 55, y / 31 * 180 + 40 * (1 - disc), 255 - x * 3 - y * 2], axis=-1)
    image = Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8), "RGB")
    os.makedirs(OUT, exist_ok=True)
    image.save(os.path.join(OUT, "init.png"))
    print("wrote Fixtures/img2img/init.png")
    return image


def vae_sample(image: Image.Image) -> None:
    vae = AutoencoderKL.from_pretrained(os.path.join(TINY, "vae"))
    pixels = VaeImageProcessor(vae_scale_factor=2).preprocess(image)
    with torch.no_grad():
        posterior = vae.encode(pixels).latent_dist
        sample = posterior.sample(torch.Generator().manual_seed(11))
    save("img2img/vae_sample.safetensors", {"mean": posterior.mean, "sample": sample}, metadata={"seed": "11"})


def pipelines(image: Image.Image) -> None:
    pipe = StableDiffusionImg2ImgPipeline(
        vae=AutoencoderKL.from_pretrained(os.path.join(TINY, "vae")),
        text_encoder=CLIPTextModel.from_pretrained(os.path.join(TINY, "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(TINY, "tokenizer")),
        unet=UNet2DConditionModel.from_pretrained(os.path.join(TINY, "unet"), torch_dtype=torch.float32),
        scheduler=PNDMScheduler.from_pretrained(os.path.join(TINY, "scheduler")),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    model_scheduler = pipe.scheduler.config
    cases = [  # sampler, prompt, negative prompt, seed, guidance, steps, strength
        ("pndm", "a red circle on a blue background", "", 42, 7.5, 8, 0.75),
        ("euler-a", "a small green triangle", "blurry", 7, 5.0, 8, 0.6),
        ("dpm++2m-karras", "a large yellow square", "", 1234, 7.5, 10, 0.5),
        ("ddim", "an astronaut riding a horse", "low quality", 3, 1.0, 6, 0.9),
    ]
    for name, prompt, negative, seed, guidance, steps, strength in cases:
        pipe.scheduler = SAMPLERS[name](model_scheduler)
        arguments = dict(prompt=prompt, image=image, negative_prompt=negative or None, num_inference_steps=steps,
                         guidance_scale=guidance, strength=strength)
        latents = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images
        picture = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images[0]
        pixels = torch.from_numpy((picture * 255).round().astype(np.uint8).astype(np.float32))
        save(f"img2img/{name}.safetensors", {"latents": latents, "pixels": pixels},
             metadata={"prompt": prompt, "negative_prompt": negative, "seed": str(seed), "guidance_scale": str(guidance),
                       "steps": str(steps), "strength": str(strength), "scheduler": name})


def resize() -> None:
    y, x = np.mgrid[0:45, 0:61].astype(np.float32)
    rng = np.random.default_rng(5)
    smooth = np.stack([x * 4, y * 5, 128 + 100 * np.sin(x / 5) * np.cos(y / 4)], axis=-1)
    rgb = np.clip(smooth + rng.normal(0, 40, smooth.shape), 0, 255).round().astype(np.uint8)
    rgb[10:20, 30:40] = [255, 0, 0]  # hard edges ring with Lanczos (and clip at 0 and 255)
    source = Image.fromarray(rgb, "RGB")
    source.save(os.path.join(OUT, "resize_source.png"))
    processor = VaeImageProcessor(vae_scale_factor=8)
    height, width = processor.get_default_height_width(source)
    assert (width, height) == (56, 40)
    for size in [(width, height), (56, 45), (61, 40)]:
        processor.resize(source, size[1], size[0]).save(os.path.join(OUT, f"resize_{size[0]}x{size[1]}.png"))
    print("wrote Fixtures/img2img/resize_*.png")


if __name__ == "__main__":
    resize()
    schedulers()
    forward()
    picture = init_image()
    vae_sample(picture)
    pipelines(picture)
