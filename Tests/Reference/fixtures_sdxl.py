"""SDXL fixtures, made with diffusers' and transformers' own classes.

- tiny-sdxl/: a diffusers folder of the SDXL architecture in miniature: CLIP ViT-L's kind of text encoder
  (quick_gelu, tokenizer padding with the end token) and OpenCLIP ViT-bigG's (gelu, with its text projection,
  tokenizer_2 padding with "!"), a UNet whose first down block has no attention, per-block transformer depths,
  linear projections and the "text_time" added conditioning, a VAE with SDXL's scaling factor, and SDXL's
  Euler scheduler.
- sdxl/: what diffusers computes with it: tokenizer ids, both encoders' penultimate hidden states and the
  pooled projection, the UNet's output with its added conditioning, and images of StableDiffusionXLPipeline
  (a negative prompt; the zeroed negative of force_zeros_for_empty_prompt; SDXL-Turbo's recipe).
- checkpoint/tiny-sdxl-single.safetensors: the same model as one original (SGM) checkpoint
  (conditioner.embedders.0/1, label_emb), checked against diffusers' own converter.
"""
import os

import numpy as np
import torch
from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,
                                                 convert_ldm_vae_checkpoint, convert_open_clip_checkpoint)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

import small_bpe
from checkpoint_mapping import to_original_sdxl
from common import FIXTURES, save, seed_all

TINY = os.path.join(FIXTURES, "tiny-sdxl")
CORPUS = ["a red circle on a blue background", "a small green triangle on a white background",
          "a photo of an astronaut riding a horse", "blurry, low quality", "a large yellow square"]
# stabilityai/stable-diffusion-xl-base-1.0's scheduler_config.json.
SDXL_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1,
                      interpolation_type="linear", prediction_type="epsilon", sample_max_value=1.0,
                      timestep_spacing="leading", use_karras_sigmas=False)
# SDXL's layout in miniature: no attention in the first block, transformer depths per block (the mid block takes
# the last), heads per block, cross-attention on both encoders' widths, pooled 16 + 6 x 8 size embeddings.
UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16, 16), layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(1, 2, 4), transformer_layers_per_block=(1, 1, 2), cross_attention_dim=32,
            norm_num_groups=8, use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=16 + 6 * 8)


def perturbed(model):
    """Default inits leave norms at 1/0 and some biases at 0; perturb them so every path is exercised."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model.eval()


def pixels_of(image):
    return torch.from_numpy((image * 255).round().astype(np.uint8).astype(np.float32))


seed_all(0)
vocab, merges = small_bpe.train(CORPUS, 60)
small_bpe.write(os.path.join(TINY, "tokenizer"), vocab, merges)
small_bpe.write(os.path.join(TINY, "tokenizer_2"), vocab, merges, pad_token="!")
special = dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"])
text_config = CLIPTextConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=3,
                             hidden_act="quick_gelu", vocab_size=len(vocab), max_position_embeddings=77, projection_dim=16,
                             pad_token_id=1, **special)
# SDXL's text_encoder_2/config.json keeps transformers' legacy eos_token_id 2: the pooled token is the argmax id.
text_config_2 = CLIPTextConfig(hidden_size=16, intermediate_size=48, num_attention_heads=4, num_hidden_layers=3,
                               hidden_act="gelu", vocab_size=len(vocab), max_position_embeddings=77, projection_dim=16,
                               bos_token_id=0, eos_token_id=2, pad_token_id=1)
text_encoder = perturbed(CLIPTextModel(text_config))
text_encoder_2 = perturbed(CLIPTextModelWithProjection(text_config_2))
unet = perturbed(UNet2DConditionModel(**UNET))
vae = perturbed(AutoencoderKL(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                              down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                              sample_size=32, scaling_factor=0.13025))
text_encoder.save_pretrained(os.path.join(TINY, "text_encoder"))
text_encoder_2.save_pretrained(os.path.join(TINY, "text_encoder_2"))
# The UNet in fp16, as SDXL is downloaded (and to keep the fixture small).
unet.half().save_pretrained(os.path.join(TINY, "unet"))
vae.save_pretrained(os.path.join(TINY, "vae"))
unet = UNet2DConditionModel.from_pretrained(os.path.join(TINY, "unet"), torch_dtype=torch.float32).eval()

pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                 tokenizer=CLIPTokenizer.from_pretrained(os.path.join(TINY, "tokenizer")),
                                 tokenizer_2=CLIPTokenizer.from_pretrained(os.path.join(TINY, "tokenizer_2")),
                                 unet=unet, scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER),
                                 force_zeros_for_empty_prompt=True, add_watermarker=False)
assert pipe.tokenizer_2.pad_token_id == 0 and pipe.tokenizer.pad_token_id == vocab["<|endoftext|>"]
pipe.scheduler.save_pretrained(os.path.join(TINY, "scheduler"))
pipe.save_config(TINY)
pipe.set_progress_bar_config(disable=True)

# The networks alone.
PROMPTS = ["a red circle", "an astronaut riding a horse on a blue background"]
generator = torch.Generator().manual_seed(7)
with torch.no_grad():
    ids = pipe.tokenizer(PROMPTS, padding="max_length", max_length=77, return_tensors="pt").input_ids
    ids_2 = pipe.tokenizer_2(PROMPTS, padding="max_length", max_length=77, return_tensors="pt").input_ids
    out_1 = text_encoder(ids, output_hidden_states=True)
    out_2 = text_encoder_2(ids_2, output_hidden_states=True)
    states = torch.cat([out_1.hidden_states[-2], out_2.hidden_states[-2]], dim=-1)
    pooled = out_2.text_embeds
    time_ids = torch.tensor([[24.0, 32.0, 0.0, 0.0, 24.0, 32.0], [1024.0, 768.0, 16.0, 8.0, 512.0, 512.0]])
    sample = torch.randn(2, 4, 8, 12, generator=generator)
    output = unet(sample, 500.25, encoder_hidden_states=states,
                  added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
save("sdxl/networks.safetensors",
     {"input_ids": ids.float(), "input_ids_2": ids_2.float(), "text_encoder.penultimate": out_1.hidden_states[-2],
      "text_encoder.skip2": out_1.hidden_states[-3], "text_encoder_2.penultimate": out_2.hidden_states[-2],
      "text_encoder_2.pooled": pooled, "unet.sample": sample, "unet.timestep": torch.tensor([500.25]),
      "unet.encoder_hidden_states": states, "unet.time_ids": time_ids, "unet.output": output},
     metadata={"prompts": "|".join(PROMPTS)})

# The pipeline: SDXL's Euler with a negative prompt; without one (force_zeros_for_empty_prompt zeroes the
# unconditional half); SDXL-Turbo's recipe (Euler a, trailing spacing, one step, no guidance).
CASES = [  # name, scheduler, prompt, negative prompt (None: not given), seed, guidance, steps
    ("euler", pipe.scheduler, "a red circle on a blue background", "blurry", 42, 5.0, 3),
    ("zeros", pipe.scheduler, "a small green triangle", None, 7, 5.0, 3),
    ("turbo", EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing"),
     "a large yellow square", None, 3, 0.0, 1),
]
for name, scheduler, prompt, negative, seed, guidance, steps in CASES:
    pipe.scheduler = scheduler
    arguments = dict(prompt=prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance,
                     width=32, height=24)
    latents = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images
    image = pipe(**arguments, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images[0]
    save(f"sdxl/{name}.safetensors", {"latents": latents, "pixels": pixels_of(image)},
         metadata={"prompt": prompt, "negative_prompt": negative or "", "seed": str(seed), "guidance_scale": str(guidance),
                   "steps": str(steps), "width": "32", "height": "24", "scheduler": name})

# The single-file checkpoint in original (SGM) names, checked against diffusers' converter.
projection = text_encoder_2.text_projection.weight.detach()
original = to_original_sdxl({k: v.half() for k, v in unet.state_dict().items()}, dict(unet.config), vae.state_dict(),
                            dict(vae.config), text_encoder.state_dict(), text_encoder_2.state_dict(), projection)
back_unet = convert_ldm_unet_checkpoint(original, dict(unet.config))
assert set(back_unet) == set(unet.state_dict()), set(back_unet) ^ set(unet.state_dict())
assert all(torch.equal(back_unet[k].float(), v.half().float()) for k, v in unet.state_dict().items())
back_vae = convert_ldm_vae_checkpoint(original, dict(vae.config))
assert set(back_vae) == set(vae.state_dict())
back_text = convert_ldm_clip_checkpoint(original)
expected = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in text_encoder.state_dict().items()}
assert set(back_text) == set(expected) and all(torch.equal(back_text[k], v) for k, v in expected.items())
back_text_2 = convert_open_clip_checkpoint(text_encoder_2, original, prefix="conditioner.embedders.1.model.")
expected_2 = text_encoder_2.state_dict()
assert set(back_text_2) == set(expected_2) - {"text_model.embeddings.position_ids"}, set(back_text_2) ^ set(expected_2)
assert all(torch.equal(back_text_2[k], expected_2[k]) for k in back_text_2)
path = os.path.join(FIXTURES, "checkpoint", "tiny-sdxl-single.safetensors")
save_file({k: v.contiguous() for k, v in original.items()}, path)
print(f"wrote {os.path.relpath(path, FIXTURES)} ({os.path.getsize(path)} bytes), checked against diffusers' converter")
