"""`make verify-full`: the full-size SD 1.5 architecture with seeded random weights, run by
PyTorch/diffusers, written as a reference for `sfumato verify` to compare against.

Writes into .cache/sd15-random/ (git-ignored): a diffusers folder (fp32), a single-file original
checkpoint made from it, and reference.safetensors with inputs and torch outputs. Reuses what
is already there, so a second run only recomputes what is missing. `--model-only` stops after
the diffusers folder (what `make bench-compare` needs). Also draws init-256.png, the input of the
VAE encoder check and of the image-to-image comparison.
"""
import json
import os
import shutil
import sys

import torch
from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from checkpoint_mapping import to_original

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".cache", "sd15-random")
FOLDER = os.path.join(CACHE, "diffusers")
SINGLE = os.path.join(CACHE, "sd15-random.safetensors")
REFERENCE = os.path.join(CACHE, "reference.safetensors")
VOCAB = os.path.join(ROOT, ".cache", "clip-vocab")

# Text to image at 256x256 for two samplers: diffusers' images, for `sfumato generate` to match.
PROMPT, NEGATIVE, SEED, STEPS = "a photograph of an astronaut riding a horse", "blurry", 42, 8
SAMPLERS = {"pndm": "PNDMScheduler", "euler-a": "EulerAncestralDiscreteScheduler"}
# Image to image at 256x256 from INIT (drawn here), for `sfumato img2img` to match.
INIT = os.path.join(CACHE, "init-256.png")
IMG2IMG = dict(scheduler="euler-a", strength=0.6)
if len(sys.argv) > 1 and sys.argv[1] == "--compare":
    import numpy as np
    from PIL import Image
    failed = False
    for name in list(SAMPLERS) + ["img2img"]:
        ours = np.asarray(Image.open(os.path.join(CACHE, f"ours-{name}.png")).convert("RGB")).astype(int)
        theirs = np.asarray(Image.open(os.path.join(CACHE, f"torch-{name}.png")).convert("RGB")).astype(int)
        close = float((np.abs(ours - theirs) <= 2).mean())
        print(f"256x256 {name}: {close * 100:.2f}% of pixel values within 2 levels of diffusers (max diff {np.abs(ours - theirs).max()})")
        failed |= close < 0.99
    sys.exit(1 if failed else 0)
torch.set_num_threads(os.cpu_count())
torch.manual_seed(1234)

if not os.path.exists(os.path.join(FOLDER, "model_index.json")):
    print("building random-weight SD 1.5 networks in", FOLDER, flush=True)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_act="quick_gelu", hidden_size=768, intermediate_size=3072,
                                                num_attention_heads=12, num_hidden_layers=12, projection_dim=768,
                                                max_position_embeddings=77, vocab_size=49408))
    unet = UNet2DConditionModel(
        sample_size=64, cross_attention_dim=768, attention_head_dim=8, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512)
    # Default inits leave norms at 1/0 and some biases at 0; perturb them so every path is exercised.
    with torch.no_grad():
        for model in (text_encoder, unet, vae):
            for name, parameter in model.named_parameters():
                if parameter.dim() == 1:
                    parameter.add_(torch.randn_like(parameter) * 0.05)
    text_encoder.save_pretrained(os.path.join(FOLDER, "text_encoder"))
    unet.save_pretrained(os.path.join(FOLDER, "unet"))
    vae.save_pretrained(os.path.join(FOLDER, "vae"))
    PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                  set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1
                  ).save_pretrained(os.path.join(FOLDER, "scheduler"))
    if os.path.exists(os.path.join(VOCAB, "vocab.json")):
        os.makedirs(os.path.join(FOLDER, "tokenizer"), exist_ok=True)
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(os.path.join(VOCAB, name), os.path.join(FOLDER, "tokenizer", name))
    with open(os.path.join(FOLDER, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "text_encoder": ["transformers", "CLIPTextModel"],
                   "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "PNDMScheduler"]}, f, indent=2)

# SD 1.5's tokenizer settings (the vocabulary is CLIP's own, from `make vocab`).
TOKENIZER_CONFIG = os.path.join(FOLDER, "tokenizer", "tokenizer_config.json")
if os.path.isdir(os.path.dirname(TOKENIZER_CONFIG)) and not os.path.exists(TOKENIZER_CONFIG):
    with open(TOKENIZER_CONFIG, "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
                   "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                   "do_lower_case": True}, f, indent=2)

# `--model-only` (make bench-compare): stop once the diffusers folder exists.
if len(sys.argv) > 1 and sys.argv[1] == "--model-only":
    print("model ready:", FOLDER)
    sys.exit(0)

text_encoder = CLIPTextModel.from_pretrained(os.path.join(FOLDER, "text_encoder")).eval()
unet = UNet2DConditionModel.from_pretrained(os.path.join(FOLDER, "unet")).eval()
vae = AutoencoderKL.from_pretrained(os.path.join(FOLDER, "vae")).eval()

if not os.path.exists(SINGLE):
    print("writing the single-file checkpoint", SINGLE, flush=True)
    state = to_original(unet.state_dict(), dict(unet.config), vae.state_dict(), dict(vae.config), text_encoder.state_dict())
    save_file({k: v.contiguous() for k, v in state.items()}, SINGLE)

if not os.path.exists(REFERENCE):
    import time
    out = {}
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        ids = torch.randint(0, 49406, (2, 77), generator=generator)
        ids[:, 0] = 49406
        ids[0, 10:] = 49407
        ids[1, 40:] = 49407
        start = time.time()
        states = text_encoder(ids).last_hidden_state
        print(f"torch text encoder 2x77: {time.time() - start:.2f} s", flush=True)
        out.update({"text_encoder.input_ids": ids.float(), "text_encoder.output": states})
        for size in (32, 64):
            sample = torch.randn(2, 4, size, size, generator=generator)
            start = time.time()
            result = unet(sample, 500, encoder_hidden_states=states).sample
            print(f"torch UNet batch 2 at {size}x{size} latents: {time.time() - start:.2f} s", flush=True)
            out.update({f"unet{size}.sample": sample, f"unet{size}.timestep": torch.tensor([500.0]),
                        f"unet{size}.encoder_hidden_states": states, f"unet{size}.output": result})
        latents = torch.randn(1, 4, 64, 64, generator=generator)
        start = time.time()
        decoded = vae.decode(latents).sample
        print(f"torch VAE decode 64x64 latents: {time.time() - start:.2f} s", flush=True)
        out.update({"vae.latents": latents, "vae.output": decoded})
    save_file({k: v.float().clone().contiguous() for k, v in out.items()}, REFERENCE)


def init_image():
    """A 256x256 picture with smooth areas and edges (the VAE encoder's and img2img's input)."""
    import numpy as np
    from PIL import Image
    if not os.path.exists(INIT):
        y, x = np.mgrid[0:256, 0:256].astype(np.float32)
        disc = ((x - 150) ** 2 + (y - 110) ** 2 < 60 ** 2).astype(np.float32)
        rgb = np.stack([x / 255 * 200 + disc * 55, y / 255 * 180 + 40 * (1 - disc), 255 - x * 0.4 - y * 0.3], axis=-1)
        Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8), "RGB").save(INIT)
    return Image.open(INIT).convert("RGB")


# The VAE encoder (added later than the rest: older reference files get it appended).
reference = load_file(REFERENCE)
if "vae_encoder.image" not in reference:
    from diffusers.image_processor import VaeImageProcessor
    image = VaeImageProcessor(vae_scale_factor=8).preprocess(init_image())
    with torch.no_grad():
        posterior = vae.encode(image).latent_dist
    reference.update({"vae_encoder.image": image, "vae_encoder.mean": posterior.mean, "vae_encoder.std": posterior.std})
    save_file({k: v.float().clone().contiguous() for k, v in reference.items()}, REFERENCE)
print("reference ready:", REFERENCE)

import diffusers  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402

pipe = StableDiffusionPipeline.from_pretrained(FOLDER, safety_checker=None, requires_safety_checker=False)
pipe.set_progress_bar_config(disable=True)
for name, class_name in SAMPLERS.items():
    path = os.path.join(CACHE, f"torch-{name}.png")
    if os.path.exists(path):
        continue
    pipe.scheduler = getattr(diffusers, class_name).from_config(pipe.scheduler.config)
    import time
    start = time.time()
    image = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=7.5, width=256, height=256,
                 generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    print(f"torch {name} 256x256, {STEPS} steps: {time.time() - start:.1f} s", flush=True)
    image.save(path)

from diffusers import StableDiffusionImg2ImgPipeline  # noqa: E402

path = os.path.join(CACHE, "torch-img2img.png")
if not os.path.exists(path):
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
    img2img.set_progress_bar_config(disable=True)
    # The sampler switched from the model's own scheduler config, as `--scheduler` does.
    model_scheduler = PNDMScheduler.from_pretrained(os.path.join(FOLDER, "scheduler")).config
    img2img.scheduler = getattr(diffusers, SAMPLERS[IMG2IMG["scheduler"]]).from_config(model_scheduler)
    import time
    start = time.time()
    image = img2img(PROMPT, image=init_image(), strength=IMG2IMG["strength"], negative_prompt=NEGATIVE,
                    num_inference_steps=STEPS, guidance_scale=7.5, generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    print(f"torch img2img 256x256, strength {IMG2IMG['strength']}, {STEPS} steps: {time.time() - start:.1f} s", flush=True)
    image.save(path)

