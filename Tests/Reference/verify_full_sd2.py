"""`make verify-full-sd2`: the full-size SD 2.1 768-v architecture with seeded random weights, run by
PyTorch/diffusers, written as a reference for `sfumato verify` and `sfumato generate` to compare against.

Writes into .cache/sd21-random/ (git-ignored): a diffusers folder (fp32; stabilityai/stable-diffusion-2-1's
configurations: OpenCLIP ViT-H text encoder of 23 layers, linear projections, upcast attention, v-prediction
DDIM), a single-file original checkpoint made from it (the text encoder in OpenCLIP names with fused
in_proj, its unused 24th layer and text_projection), reference.safetensors with network inputs and torch
outputs, and diffusers' 3-step image. Reuses what is already there. `--compare` checks our images.
"""
import json
import os
import shutil
import sys

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel
from transformers.models.clip.modeling_clip import CLIPEncoderLayer

from checkpoint_mapping import to_original_sd2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".cache", "sd21-random")
FOLDER = os.path.join(CACHE, "diffusers")
SINGLE = os.path.join(CACHE, "sd21-random.safetensors")
REFERENCE = os.path.join(CACHE, "reference.safetensors")
VOCAB = os.path.join(ROOT, ".cache", "clip-vocab")
PROMPT, NEGATIVE, SEED, STEPS, SIZE = "a photograph of an astronaut riding a horse", "blurry", 42, 3, 256

if len(sys.argv) > 1 and sys.argv[1] == "--compare":
    import numpy as np
    from PIL import Image
    theirs = np.asarray(Image.open(os.path.join(CACHE, "torch-ddim.png")).convert("RGB")).astype(int)
    failed = False
    for name, label in (("folder", "diffusers folder"), ("single", "single-file checkpoint")):
        ours = np.asarray(Image.open(os.path.join(CACHE, f"ours-{name}.png")).convert("RGB")).astype(int)
        close = float((np.abs(ours - theirs) <= 2).mean())
        print(f"{SIZE}x{SIZE} DDIM v-prediction from the {label}: {close * 100:.2f}% of pixel values within 2 levels "
              f"of diffusers (max diff {np.abs(ours - theirs).max()})")
        failed |= close < 0.99
    sys.exit(1 if failed else 0)
torch.set_num_threads(os.cpu_count())
torch.manual_seed(2100)

TEXT = dict(hidden_act="gelu", hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
            projection_dim=512, max_position_embeddings=77, vocab_size=49408, bos_token_id=49406, eos_token_id=49407,
            pad_token_id=0)
if not os.path.exists(os.path.join(FOLDER, "model_index.json")):
    print("building random-weight SD 2.1 networks in", FOLDER, flush=True)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT))
    unet = UNet2DConditionModel(
        sample_size=96, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), use_linear_projection=True, upcast_attention=True,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=768)
    with torch.no_grad():
        for model in (text_encoder, unet, vae):
            for name, parameter in model.named_parameters():
                if parameter.dim() == 1:
                    parameter.add_(torch.randn_like(parameter) * 0.05)
    text_encoder.save_pretrained(os.path.join(FOLDER, "text_encoder"))
    unet.save_pretrained(os.path.join(FOLDER, "unet"))
    vae.save_pretrained(os.path.join(FOLDER, "vae"))
    DDIMScheduler.from_config(dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1,
                                   prediction_type="v_prediction")).save_pretrained(os.path.join(FOLDER, "scheduler"))
    os.makedirs(os.path.join(FOLDER, "tokenizer"), exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(VOCAB, name), os.path.join(FOLDER, "tokenizer", name))
    # stabilityai/stable-diffusion-2-1's tokenizer settings: padding with "!".
    with open(os.path.join(FOLDER, "tokenizer", "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
                   "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>", "do_lower_case": True}, f, indent=2)
    with open(os.path.join(FOLDER, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "text_encoder": ["transformers", "CLIPTextModel"],
                   "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "DDIMScheduler"]}, f, indent=2)

pipe = StableDiffusionPipeline.from_pretrained(FOLDER, safety_checker=None, requires_safety_checker=False)
pipe.set_progress_bar_config(disable=True)
text_encoder, unet, vae = pipe.text_encoder.eval(), pipe.unet.eval(), pipe.vae.eval()
assert pipe.tokenizer.pad_token_id == 0

if not os.path.exists(SINGLE):
    print("writing the single-file checkpoint", SINGLE, flush=True)
    last_layer = CLIPEncoderLayer(CLIPTextConfig(**TEXT)).state_dict()
    state = to_original_sd2(unet.state_dict(), dict(unet.config), vae.state_dict(), dict(vae.config), text_encoder.state_dict(),
                            last_layer, torch.randn(1024, 1024) * 0.03)
    save_file({k: v.contiguous() for k, v in state.items()}, SINGLE + ".partial")
    os.replace(SINGLE + ".partial", SINGLE)

if not os.path.exists(REFERENCE):
    out = {}
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        ids = torch.randint(0, 49406, (2, 77), generator=generator)
        ids[:, 0] = 49406
        ids[0, 10], ids[0, 11:] = 49407, 0
        ids[1, 40], ids[1, 41:] = 49407, 0
        states = text_encoder(ids).last_hidden_state
        out.update({"text_encoder.input_ids": ids.float(), "text_encoder.output": states})
        for size in (32, 64):
            sample = torch.randn(2, 4, size, size, generator=generator)
            result = unet(sample, 500, encoder_hidden_states=states).sample
            out.update({f"unet{size}.sample": sample, f"unet{size}.timestep": torch.tensor([500.0]),
                        f"unet{size}.encoder_hidden_states": states, f"unet{size}.output": result})
        latents = torch.randn(1, 4, 32, 32, generator=generator)
        out.update({"vae.latents": latents, "vae.output": vae.decode(latents).sample})
        image = torch.rand(1, 3, 256, 256, generator=generator) * 2 - 1
        posterior = vae.encode(image).latent_dist
        out.update({"vae_encoder.image": image, "vae_encoder.mean": posterior.mean, "vae_encoder.std": posterior.std})
    save_file({k: v.float().clone().contiguous() for k, v in out.items()}, REFERENCE)
print("reference ready:", REFERENCE)

path = os.path.join(CACHE, "torch-ddim.png")
if not os.path.exists(path):
    image = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=7.5, width=SIZE, height=SIZE,
                 generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    image.save(path)
print("image ready:", path)
