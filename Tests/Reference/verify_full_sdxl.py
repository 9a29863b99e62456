"""`make verify-full-sdxl`: the full-size SDXL base architecture with seeded random weights, run by
PyTorch/diffusers, written as a reference for `sfumato verify` and `sfumato generate` to compare against.

Writes into .cache/sdxl-random/ (git-ignored, ~28 GB: folder and single file): a diffusers folder (fp32; stabilityai/stable-diffusion-xl-base-1.0's
configurations: CLIP ViT-L and OpenCLIP ViT-bigG with its projection, the 2.6 B-parameter UNet with "text_time" added
conditioning, the VAE with scaling factor 0.13025, Euler), a single-file SGM checkpoint made from it
(conditioner.embedders.0/1, label_emb), reference.safetensors with network inputs and torch outputs (one UNet step at
64x64 latents), and diffusers' 2-step image at 512x512. Reuses what is already there. `--compare` checks our images.

`--reduced` builds the same layout with small widths and depths into .cache/sdxl-reduced/ (a few MB) to check
this script and the make target quickly.
"""
import json
import os
import shutil
import sys

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from checkpoint_mapping import to_original_sdxl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REDUCED = "--reduced" in sys.argv
CACHE = os.path.join(ROOT, ".cache", "sdxl-reduced" if REDUCED else "sdxl-random")
FOLDER = os.path.join(CACHE, "diffusers")
SINGLE = os.path.join(CACHE, "sdxl-random.safetensors")
REFERENCE = os.path.join(CACHE, "reference.safetensors")
VOCAB = os.path.join(ROOT, ".cache", "clip-vocab")
PROMPT, NEGATIVE, SEED, STEPS, SIZE = "a photograph of an astronaut riding a horse", "blurry", 42, 2, 512

if "--compare" in sys.argv:
    import numpy as np
    from PIL import Image
    theirs = np.asarray(Image.open(os.path.join(CACHE, "torch-euler.png")).convert("RGB")).astype(int)
    failed = False
    for name, label in (("folder", "diffusers folder"), ("single", "single-file checkpoint")):
        ours = np.asarray(Image.open(os.path.join(CACHE, f"ours-{name}.png")).convert("RGB")).astype(int)
        close = float((np.abs(ours - theirs) <= 2).mean())
        print(f"{SIZE}x{SIZE} SDXL Euler from the {label}: {close * 100:.2f}% of pixel values within 2 levels "
              f"of diffusers (max diff {np.abs(ours - theirs).max()})")
        failed |= close < 0.99
    sys.exit(1 if failed else 0)
torch.set_num_threads(os.cpu_count())
torch.manual_seed(2300)

# stabilityai/stable-diffusion-xl-base-1.0's configurations (the reduced variant keeps the layout, not the widths).
SPECIAL = dict(max_position_embeddings=77, vocab_size=49408, bos_token_id=49406, eos_token_id=2, pad_token_id=1)
TEXT = dict(hidden_act="quick_gelu", hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
            projection_dim=768, **SPECIAL)
TEXT_2 = dict(hidden_act="gelu", hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
              projection_dim=1280, **SPECIAL)
UNET = dict(sample_size=128, cross_attention_dim=2048, attention_head_dim=(5, 10, 20), layers_per_block=2,
            block_out_channels=(320, 640, 1280), transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), addition_embed_type="text_time",
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816, addition_embed_type_num_heads=64)
VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=1024,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.13025)
if REDUCED:
    TEXT.update(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_hidden_layers=3, projection_dim=64)
    TEXT_2.update(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_hidden_layers=4, projection_dim=64)
    UNET.update(cross_attention_dim=128, block_out_channels=(32, 64, 64), attention_head_dim=(1, 2, 4),
                transformer_layers_per_block=(1, 1, 2), addition_time_embed_dim=16, projection_class_embeddings_input_dim=64 + 96,
                norm_num_groups=16)
    VAE.update(block_out_channels=(16, 32, 32, 32), norm_num_groups=8)
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                 set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1, interpolation_type="linear",
                 prediction_type="epsilon", sample_max_value=1.0, timestep_spacing="leading", use_karras_sigmas=False)


def tokenizer_folder(name, pad_token):
    os.makedirs(os.path.join(FOLDER, name), exist_ok=True)
    for file in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(VOCAB, file), os.path.join(FOLDER, name, file))
    with open(os.path.join(FOLDER, name, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
                   "eos_token": "<|endoftext|>", "pad_token": pad_token, "unk_token": "<|endoftext|>", "do_lower_case": True}, f, indent=2)


if not os.path.exists(os.path.join(FOLDER, "model_index.json")):
    print("building random-weight SDXL networks in", FOLDER, flush=True)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_2))
    unet = UNet2DConditionModel(**UNET)
    vae = AutoencoderKL(**VAE)
    with torch.no_grad():
        for model in (text_encoder, text_encoder_2, unet, vae):
            for name, parameter in model.named_parameters():
                if parameter.dim() == 1:
                    parameter.add_(torch.randn_like(parameter) * 0.05)
    text_encoder.save_pretrained(os.path.join(FOLDER, "text_encoder"))
    text_encoder_2.save_pretrained(os.path.join(FOLDER, "text_encoder_2"))
    unet.save_pretrained(os.path.join(FOLDER, "unet"))
    vae.save_pretrained(os.path.join(FOLDER, "vae"))
    EulerDiscreteScheduler.from_config(SCHEDULER).save_pretrained(os.path.join(FOLDER, "scheduler"))
    # stable-diffusion-xl-base-1.0's tokenizers: the first pads with the end token, the second with "!".
    tokenizer_folder("tokenizer", "<|endoftext|>")
    tokenizer_folder("tokenizer_2", "!")
    with open(os.path.join(FOLDER, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True,
                   "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
                   "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                   "scheduler": ["diffusers", "EulerDiscreteScheduler"]}, f, indent=2)

pipe = StableDiffusionXLPipeline.from_pretrained(FOLDER, add_watermarker=False)
pipe.set_progress_bar_config(disable=True)
text_encoder, text_encoder_2, unet, vae = (pipe.text_encoder.eval(), pipe.text_encoder_2.eval(), pipe.unet.eval(),
                                           pipe.vae.eval())
assert pipe.tokenizer_2.pad_token_id == 0

if not os.path.exists(SINGLE):
    print("writing the single-file checkpoint", SINGLE, flush=True)
    state = to_original_sdxl(unet.state_dict(), dict(unet.config), vae.state_dict(), dict(vae.config), text_encoder.state_dict(),
                             text_encoder_2.state_dict(), text_encoder_2.text_projection.weight.detach())
    save_file({k: v.contiguous() for k, v in state.items()}, SINGLE + ".partial")
    os.replace(SINGLE + ".partial", SINGLE)

if not os.path.exists(REFERENCE):
    out = {}
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        ids = torch.randint(0, 49406, (2, 77), generator=generator)
        ids[:, 0] = 49406
        ids[0, 10], ids[0, 11:] = 49407, 49407
        ids[1, 40], ids[1, 41:] = 49407, 49407
        ids_2 = ids.clone()
        ids_2[0, 11:], ids_2[1, 41:] = 0, 0
        first = text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        second = text_encoder_2(ids_2, output_hidden_states=True)
        states = torch.cat([first, second.hidden_states[-2]], dim=-1)
        out.update({"text_encoder.input_ids": ids.float(), "text_encoder.output": first, "text_encoder_2.input_ids": ids_2.float(),
                    "text_encoder_2.output": second.hidden_states[-2], "text_encoder_2.pooled": second.text_embeds})
        sample = torch.randn(2, 4, 64, 64, generator=generator)
        time_ids = torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0]] * 2)
        result = unet(sample, 500, encoder_hidden_states=states,
                      added_cond_kwargs={"text_embeds": second.text_embeds, "time_ids": time_ids}).sample
        out.update({"unet64.sample": sample, "unet64.timestep": torch.tensor([500.0]), "unet64.encoder_hidden_states": states,
                    "unet64.text_embeds": second.text_embeds, "unet64.time_ids": time_ids, "unet64.output": result})
        latents = torch.randn(1, 4, 32, 32, generator=generator)
        out.update({"vae.latents": latents, "vae.output": vae.decode(latents).sample})
        image = torch.rand(1, 3, 256, 256, generator=generator) * 2 - 1
        posterior = vae.encode(image).latent_dist
        out.update({"vae_encoder.image": image, "vae_encoder.mean": posterior.mean, "vae_encoder.std": posterior.std})
    save_file({k: v.float().clone().contiguous() for k, v in out.items()}, REFERENCE)
print("reference ready:", REFERENCE)

path = os.path.join(CACHE, "torch-euler.png")
if not os.path.exists(path):
    image = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=5.0, width=SIZE, height=SIZE,
                 generator=torch.Generator("cpu").manual_seed(SEED)).images[0]
    image.save(path)
print("image ready:", path)
