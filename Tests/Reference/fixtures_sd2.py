"""SD 2.x and LCM fixtures, made with diffusers' and transformers' own classes.

- tiny-sd2/: a diffusers folder of the SD 2.x architecture in miniature: a gelu CLIP text encoder
  (OpenCLIP as transformers holds it), a tokenizer padding with "!", a UNet with linear projections,
  upcast attention and per-block head counts, and SD 2.1's v-prediction DDIM scheduler.
- sd2/: what diffusers computes with it: tokenizer ids, text encoder states, UNet output, and images of
  StableDiffusionPipeline (v-prediction DDIM with guidance; Euler with trailing spacing without).
- checkpoint/tiny-sd2-single.safetensors: the same model as one original (LDM) checkpoint, the text
  encoder in OpenCLIP names (fused in_proj, one more resblock than diffusers keeps, text_projection),
  checked against diffusers' own converter.
- tiny-lcm/: an LCM-distilled UNet (time_cond_proj_dim) sharing tiny-sd2's other parts (symlinks), and
  sd2/lcm-*.safetensors: its guidance embedding, its output, and diffusers' pipeline image with it.
"""
import os
import shutil

import numpy as np
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, EulerDiscreteScheduler, StableDiffusionPipeline,
                       UNet2DConditionModel)
from diffusers.loaders.single_file_utils import (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
                                                 convert_open_clip_checkpoint)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.models.clip.modeling_clip import CLIPEncoderLayer

import small_bpe
from checkpoint_mapping import to_original_sd2
from common import FIXTURES, save, seed_all

TINY = os.path.join(FIXTURES, "tiny-sd2")
LCM = os.path.join(FIXTURES, "tiny-lcm")
CORPUS = ["a red circle on a blue background", "a small green triangle on a white background",
          "a photo of an astronaut riding a horse", "blurry, low quality", "a large yellow square"]
# stabilityai/stable-diffusion-2-1's scheduler_config.json.
SD21_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1,
                      prediction_type="v_prediction")
UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            attention_head_dim=(2, 4), cross_attention_dim=32, norm_num_groups=8)


def perturbed(model):
    """Default inits leave norms at 1/0 and some biases at 0; perturb them so every path is exercised."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model.eval()


seed_all(0)
vocab, merges = small_bpe.train(CORPUS, 60)
small_bpe.write(os.path.join(TINY, "tokenizer"), vocab, merges, pad_token="!")
text_config = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
                             hidden_act="gelu", vocab_size=len(vocab), max_position_embeddings=77, projection_dim=32,
                             bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=0)
text_encoder = perturbed(CLIPTextModel(text_config))
unet = perturbed(UNet2DConditionModel(**UNET, use_linear_projection=True, upcast_attention=True))
vae = perturbed(AutoencoderKL(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                              down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                              sample_size=32))
text_encoder.save_pretrained(os.path.join(TINY, "text_encoder"))
# The UNet in fp16, as most downloaded SD 2.x models are (and to keep the fixture small).
unet.half().save_pretrained(os.path.join(TINY, "unet"))
unet.float()
vae.save_pretrained(os.path.join(TINY, "vae"))

pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=CLIPTokenizer.from_pretrained(os.path.join(TINY, "tokenizer")),
                               unet=UNet2DConditionModel.from_pretrained(os.path.join(TINY, "unet"), torch_dtype=torch.float32),
                               scheduler=DDIMScheduler.from_config(SD21_SCHEDULER),
                               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
assert pipe.tokenizer.pad_token_id == 0
pipe.scheduler.save_pretrained(os.path.join(TINY, "scheduler"))
pipe.save_config(TINY)
pipe.set_progress_bar_config(disable=True)
unet = pipe.unet.eval()

# The networks alone.
generator = torch.Generator().manual_seed(7)
with torch.no_grad():
    ids = pipe.tokenizer(["a red circle", "an astronaut riding a horse on a blue background"], padding="max_length",
                         max_length=77, return_tensors="pt").input_ids
    states = text_encoder(ids).last_hidden_state
    sample = torch.randn(2, 4, 8, 12, generator=generator)
    output = unet(sample, 500.25, encoder_hidden_states=states).sample
save("sd2/networks.safetensors", {"input_ids": ids.float(), "text_states": states, "unet.sample": sample,
                                  "unet.timestep": torch.tensor([500.25]), "unet.output": output},
     metadata={"prompts": "a red circle|an astronaut riding a horse on a blue background"})

# The pipeline: v-prediction DDIM with guidance; Euler with trailing spacing (SD-Turbo's sampler) without.
CASES = [  # name, scheduler, prompt, negative prompt, seed, guidance, steps
    ("ddim", DDIMScheduler.from_config(pipe.scheduler.config), "a red circle on a blue background", "blurry", 42, 7.5, 3),
    ("euler-trailing", EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing"),
     "a small green triangle", "", 7, 0.0, 2),
]
for name, scheduler, prompt, negative, seed, guidance, steps in CASES:
    pipe.scheduler = scheduler
    arguments = dict(prompt=prompt, negative_prompt=negative or None, num_inference_steps=steps, guidance_scale=guidance,
                     width=32, height=24)
    latents = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images
    image = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images[0]
    pixels = torch.from_numpy((image * 255).round().astype(np.uint8).astype(np.float32))
    save(f"sd2/{name}.safetensors", {"latents": latents, "pixels": pixels},
         metadata={"prompt": prompt, "negative_prompt": negative, "seed": str(seed), "guidance_scale": str(guidance),
                   "steps": str(steps), "width": "32", "height": "24", "scheduler": name})

# The single-file checkpoint, in original names. OpenCLIP keeps one more layer than diffusers' SD 2 text
# encoder (diffusers drops it to condition on the penultimate layer).
last_layer = perturbed(CLIPEncoderLayer(text_config)).state_dict()
original = to_original_sd2({k: v.half() for k, v in unet.state_dict().items()}, dict(unet.config), vae.state_dict(),
                           dict(vae.config), text_encoder.state_dict(), last_layer, torch.randn(32, 32))
# Checked against diffusers' converter (which drops resblock 23 of the full-size model, so the tiny
# model's extra layer comes back from it and is left out here).
back_text = convert_open_clip_checkpoint(text_encoder, original)
# transformers 5 names the weights without the "text_model." prefix.
expected = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in text_encoder.state_dict().items()}
extra = {k for k in back_text if k.startswith("text_model.encoder.layers.2.")}
assert set(back_text) - extra == set(expected) - {"text_model.embeddings.position_ids"}, set(back_text) ^ set(expected)
for key, tensor in expected.items():
    if key in back_text:
        assert torch.equal(back_text[key], tensor), key
back_unet = convert_ldm_unet_checkpoint(original, dict(unet.config))
assert set(back_unet) == set(unet.state_dict()) and all(torch.equal(back_unet[k].float(), v.half().float()) for k, v in unet.state_dict().items())
back_vae = convert_ldm_vae_checkpoint(original, dict(vae.config))
assert set(back_vae) == set(vae.state_dict())
path = os.path.join(FIXTURES, "checkpoint", "tiny-sd2-single.safetensors")
save_file({k: v.contiguous() for k, v in original.items()}, path)
print(f"wrote {os.path.relpath(path, FIXTURES)} ({os.path.getsize(path)} bytes), checked against diffusers' converter")

# The text encoder alone in fp16 (as most downloaded SD 2.x checkpoints are): fused in_proj split after widening.
save_file({k: v.half().contiguous() for k, v in original.items() if k.startswith("cond_stage_model.")},
          os.path.join(FIXTURES, "checkpoint", "tiny-sd2-text-fp16.safetensors"))
rounded = CLIPTextModel(text_config).eval()
rounded.load_state_dict({k: v.half().float() for k, v in text_encoder.state_dict().items()})
with torch.no_grad():
    save("sd2/text-fp16.safetensors", {"text_states": rounded(ids).last_hidden_state})

# LCM: the same UNet architecture with a guidance embedding (SD 1.x-style projections, as LCM_Dreamshaper_v7).
lcm_unet = perturbed(UNet2DConditionModel(**UNET, time_cond_proj_dim=16))
os.makedirs(LCM, exist_ok=True)
lcm_unet.half().save_pretrained(os.path.join(LCM, "unet"))
lcm_unet = UNet2DConditionModel.from_pretrained(os.path.join(LCM, "unet"), torch_dtype=torch.float32).eval()
for part in ("text_encoder", "tokenizer", "vae"):
    link = os.path.join(LCM, part)
    if os.path.islink(link) or os.path.exists(link):
        os.remove(link) if os.path.islink(link) else shutil.rmtree(link)
    os.symlink(os.path.join("..", "tiny-sd2", part), link)
lcm_scheduler = DDIMScheduler.from_config({**SD21_SCHEDULER, "prediction_type": "epsilon"})
lcm_pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=pipe.tokenizer, unet=lcm_unet,
                                   scheduler=lcm_scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
lcm_pipe.scheduler.save_pretrained(os.path.join(LCM, "scheduler"))
lcm_pipe.save_config(LCM)
lcm_pipe.set_progress_bar_config(disable=True)
with torch.no_grad():
    scales = torch.tensor([8.5 - 1, 2.0 - 1])
    condition = lcm_pipe.get_guidance_scale_embedding(scales, embedding_dim=16)
    lcm_output = lcm_unet(sample, 321, encoder_hidden_states=states, timestep_cond=condition).sample
save("sd2/lcm-unet.safetensors", {"guidance_scales": scales + 1, "condition": condition, "sample": sample,
                                  "encoder_hidden_states": states, "output": lcm_output, "timestep": torch.tensor([321.0])})
arguments = dict(prompt="a large yellow square", num_inference_steps=3, guidance_scale=8.5, width=32, height=24)
latents = lcm_pipe(**arguments, generator=torch.Generator("cpu").manual_seed(11), output_type="latent").images
image = lcm_pipe(**arguments, generator=torch.Generator("cpu").manual_seed(11), output_type="np").images[0]
pixels = torch.from_numpy((image * 255).round().astype(np.uint8).astype(np.float32))
save("sd2/lcm-pipeline.safetensors", {"latents": latents, "pixels": pixels},
     metadata={"prompt": arguments["prompt"], "negative_prompt": "", "seed": "11", "guidance_scale": "8.5", "steps": "3",
               "width": "32", "height": "24", "scheduler": "ddim"})
