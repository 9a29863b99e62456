"""End-to-end fixtures: a tiny SD 1.x pipeline in diffusers layout and what diffusers draws with it.

Needs the tiny networks written by fixtures_nets_a.py (text encoder, VAE) and fixtures_nets_b.py
(UNet). Adds a small BPE tokenizer, the SD 1.5 scheduler config and model_index.json, then runs
diffusers' StableDiffusionPipeline for several schedulers and seeds.
"""
import os

import numpy as np
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel)
from transformers import CLIPTextModel, CLIPTokenizer

import small_bpe
from common import FIXTURES, save

TINY = os.path.join(FIXTURES, "tiny")
SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1, clip_sample=False)
CORPUS = ["a red circle on a blue background", "a small green triangle on a white background",
          "a photo of an astronaut riding a horse", "blurry, low quality", "a large yellow square"]

vocab, merges = small_bpe.train(CORPUS, 60)
small_bpe.write(os.path.join(TINY, "tokenizer"), vocab, merges)

pipe = StableDiffusionPipeline(
    vae=AutoencoderKL.from_pretrained(os.path.join(TINY, "vae")),
    text_encoder=CLIPTextModel.from_pretrained(os.path.join(TINY, "text_encoder")),
    tokenizer=CLIPTokenizer.from_pretrained(os.path.join(TINY, "tokenizer")),
    unet=UNet2DConditionModel.from_pretrained(os.path.join(TINY, "unet"), torch_dtype=torch.float32),
    scheduler=PNDMScheduler.from_config(SD15_SCHEDULER),
    safety_checker=None, feature_extractor=None, requires_safety_checker=False)
assert max(vocab.values()) < pipe.text_encoder.config.vocab_size, "tiny text encoder too small for the vocabulary"
pipe.scheduler.save_pretrained(os.path.join(TINY, "scheduler"))
pipe.save_config(TINY)  # model_index.json
pipe.set_progress_bar_config(disable=True)

# Samplers are switched as diffusers users do: from the model's scheduler config as loaded from
# disk (diffusers carries over only the values the file states; the rest take the new class's defaults).
MODEL_SCHEDULER = PNDMScheduler.from_pretrained(os.path.join(TINY, "scheduler")).config
CASES = [  # name, scheduler, prompt, negative prompt, seed, guidance
    ("pndm", PNDMScheduler.from_config(MODEL_SCHEDULER), "a red circle on a blue background", "", 42, 7.5),
    ("euler-a", EulerAncestralDiscreteScheduler.from_config(MODEL_SCHEDULER), "a small green triangle", "blurry", 7, 5.0),
    ("dpm++2m-karras", DPMSolverMultistepScheduler.from_config(MODEL_SCHEDULER, use_karras_sigmas=True), "a large yellow square", "", 1234, 7.5),
    ("ddim", DDIMScheduler.from_config(MODEL_SCHEDULER), "an astronaut riding a horse", "low quality", 3, 1.0),
]
for name, scheduler, prompt, negative, seed, guidance in CASES:
    pipe.scheduler = scheduler
    arguments = dict(prompt=prompt, negative_prompt=negative or None, num_inference_steps=8, guidance_scale=guidance,
                     width=48, height=32)
    latents = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images
    image = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images[0]
    pixels = torch.from_numpy((image * 255).round().astype(np.uint8).astype(np.float32))
    save(f"pipeline/{name}.safetensors", {"latents": latents, "pixels": pixels},
         metadata={"prompt": prompt, "negative_prompt": negative, "seed": str(seed), "guidance_scale": str(guidance),
                   "steps": "8", "width": "48", "height": "32", "scheduler": name})

# The same tiny model as one original-layout checkpoint (the UNet keeps its fp16 storage), for
# the single-file loader: every network read from it must equal the one read from the folder.
from checkpoint_mapping import to_original  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

unet_fp16 = {k: v.half() for k, v in pipe.unet.state_dict().items()}
single = to_original(unet_fp16, dict(pipe.unet.config), pipe.vae.state_dict(), dict(pipe.vae.config),
                     pipe.text_encoder.state_dict())
save_file({k: v.contiguous() for k, v in single.items()}, os.path.join(FIXTURES, "checkpoint", "tiny-single.safetensors"))
print("wrote Fixtures/checkpoint/tiny-single.safetensors")
