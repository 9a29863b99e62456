"""The SD 1.5 single-file name table: every original key and its diffusers name.

Built from full-size diffusers models (on the meta device: no weights, no memory), renamed
by checkpoint_mapping.py, and verified against diffusers' own single-file converter, so the
Swift rule table is tested against diffusers, not against our own reading of it.
"""
import json
import os

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

from checkpoint_mapping import to_original, unet_original_name, vae_original_name
from common import FIXTURES

UNET = dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)

with torch.device("meta"):
    unet = UNet2DConditionModel(**UNET)
    vae = AutoencoderKL(**VAE)
# Tag every tensor with its own index so a wrong pairing cannot go unnoticed.
unet_sd = {k: torch.tensor([float(i)]).expand(*v.shape) if v.dim() else torch.tensor(float(i)) for i, (k, v) in enumerate(unet.state_dict().items())}
vae_sd = {k: torch.full(tuple(v.shape), float(i)) if v.numel() < 4096 else torch.tensor([float(i)]).expand(*v.shape) for i, (k, v) in enumerate(vae.state_dict().items())}
text_names = ["text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
              "text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias"]
for layer in range(12):
    for part in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"]:
        text_names += [f"text_model.encoder.layers.{layer}.{part}.weight", f"text_model.encoder.layers.{layer}.{part}.bias"]
text_sd = {name: torch.zeros(1) for name in text_names}

original = to_original(unet_sd, dict(unet.config), vae_sd, dict(vae.config), text_sd)

back_unet = convert_ldm_unet_checkpoint(original, dict(unet.config))
assert set(back_unet) == set(unet_sd), set(back_unet) ^ set(unet_sd)
for name, tensor in unet_sd.items():
    assert back_unet[name].flatten()[0].item() == tensor.flatten()[0].item(), name
back_vae = convert_ldm_vae_checkpoint(original, dict(vae.config))
assert set(back_vae) == set(vae_sd), set(back_vae) ^ set(vae_sd)
for name, tensor in vae_sd.items():
    assert back_vae[name].shape == tensor.shape and back_vae[name].flatten()[0].item() == tensor.flatten()[0].item(), name

table = {"unet": {}, "vae": {}, "text_encoder": {}}
has_attention = ["CrossAttn" in kind for kind in UNET["up_block_types"]]
for name in unet_sd:
    table["unet"]["model.diffusion_model." + unet_original_name(name, 2, has_attention)] = name
for name in vae_sd:
    table["vae"]["first_stage_model." + vae_original_name(name, 4)] = name
for name in text_names:
    table["text_encoder"]["cond_stage_model.transformer." + name] = name
path = os.path.join(FIXTURES, "checkpoint", "sd15_names.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump(table, f, indent=0, sort_keys=True)
print(f"wrote {path}: {sum(len(v) for v in table.values())} names, verified against diffusers' converter")
