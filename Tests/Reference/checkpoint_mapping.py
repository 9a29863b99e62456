"""diffusers -> original (LDM) names for SD 1.x and 2.x, our own rules, checked against diffusers' converter.

Used by fixtures_checkpoint_mapping.py (the name table fixture) and by scripts that write
single-file checkpoints from diffusers folders (tests, `make verify-full`).
"""
import re

import torch

RESNET = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("time_emb_proj.", "emb_layers.1."),
          ("norm2.", "out_layers.0."), ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]
VAE_ATTENTION = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")]


def _swap(rest, pairs):
    for new, old in pairs:
        if rest.startswith(new):
            return old + rest[len(new):]
    return rest


def unet_original_name(name, layers_per_block, up_block_has_attention):
    fixed = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
             "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2."}
    for new, old in fixed.items():
        if name.startswith(new):
            return old + name[len(new):]
    stride = layers_per_block + 1
    m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.*)", name)
    if m:
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        if kind == "downsamplers":
            return f"input_blocks.{stride * (block + 1)}.0.op.{rest[len('conv.'):]}"
        index = stride * block + layer + 1
        return f"input_blocks.{index}.0.{_swap(rest, RESNET)}" if kind == "resnets" else f"input_blocks.{index}.1.{rest}"
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", name)
    if m:
        if m[1] == "attentions":
            return f"middle_block.1.{m[3]}"
        return f"middle_block.{0 if m[2] == '0' else 2}.{_swap(m[3], RESNET)}"
    m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.*)", name)
    if m:
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        if kind == "upsamplers":
            part = 2 if up_block_has_attention[block] else 1
            return f"output_blocks.{stride * block + layers_per_block}.{part}.{rest}"
        index = stride * block + layer
        return f"output_blocks.{index}.0.{_swap(rest, RESNET)}" if kind == "resnets" else f"output_blocks.{index}.1.{rest}"
    raise ValueError(f"no rule for UNet tensor {name}")


def vae_original_name(name, block_count):
    if name.startswith(("quant_conv.", "post_quant_conv.")):
        return name
    coder, rest = name.split(".", 1)
    if rest.startswith("conv_norm_out."):
        return f"{coder}.norm_out.{rest[len('conv_norm_out.'):]}"
    if rest.startswith(("conv_in.", "conv_out.")):
        return name
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", rest)
    if m:
        if m[1] == "attentions":
            return f"{coder}.mid.attn_1.{_swap(m[3], VAE_ATTENTION)}"
        return f"{coder}.mid.block_{int(m[2]) + 1}.{_swap(m[3], [('conv_shortcut.', 'nin_shortcut.')])}"
    m = re.match(r"(down_blocks|up_blocks)\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*)", rest)
    if m:
        block = int(m[2]) if coder == "encoder" else block_count - 1 - int(m[2])
        level = "down" if coder == "encoder" else "up"
        if m[3] == "resnets":
            return f"{coder}.{level}.{block}.block.{m[4]}.{_swap(m[5], [('conv_shortcut.', 'nin_shortcut.')])}"
        return f"{coder}.{level}.{block}.{'downsample' if m[3] == 'downsamplers' else 'upsample'}.{m[5]}"
    raise ValueError(f"no rule for VAE tensor {name}")


def to_original(unet_sd, unet_config, vae_sd, vae_config, text_sd):
    """A single-file checkpoint state dict from the three diffusers state dicts."""
    layers = unet_config["layers_per_block"]
    has_attention = ["CrossAttn" in kind for kind in unet_config["up_block_types"]]
    result = {}
    for name, tensor in unet_sd.items():
        result["model.diffusion_model." + unet_original_name(name, layers, has_attention)] = tensor
    blocks = len(vae_config["block_out_channels"])
    for name, tensor in vae_sd.items():
        original = vae_original_name(name, blocks)
        # The original VAE attention uses 1x1 convolutions where diffusers has linear layers.
        if ".attn_1." in original and original.endswith(".weight") and tensor.dim() == 2:
            tensor = tensor[:, :, None, None]
        result["first_stage_model." + original] = tensor
    for name, tensor in text_sd.items():
        name = name if name.startswith("text_model.") else "text_model." + name
        result["cond_stage_model.transformer." + name] = tensor
    return result


OPENCLIP_LAYER = [("layer_norm1.", "ln_1."), ("layer_norm2.", "ln_2."), ("self_attn.out_proj.", "attn.out_proj."),
                  ("mlp.fc1.", "mlp.c_fc."), ("mlp.fc2.", "mlp.c_proj.")]
OPENCLIP_FIXED = {"embeddings.token_embedding.weight": "token_embedding.weight",
                  "embeddings.position_embedding.weight": "positional_embedding",
                  "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}


def openclip_original(text_sd, last_layer, text_projection, prefix="cond_stage_model.model."):
    """SD 2.x's `cond_stage_model.model.*` tensors from a transformers CLIPTextModel state dict: q, k, v fused
    into in_proj, plus the original's last resblock (`last_layer`, a state dict of one more encoder layer
    in diffusers names, which SD 2 does not use; None for SDXL, which keeps every layer) and the contrastive
    head's text_projection (the original's [hidden, projection] matrix)."""
    text_sd = {k[len("text_model."):] if k.startswith("text_model.") else k: v for k, v in text_sd.items()
               if k != "text_projection.weight"}
    layers = 1 + max(int(k.split(".")[2]) for k in text_sd if k.startswith("encoder.layers."))
    result = {prefix + OPENCLIP_FIXED[k]: v for k, v in text_sd.items() if k in OPENCLIP_FIXED}
    for index in range(layers + (last_layer is not None)):
        layer = last_layer if index == layers else {k[len(f"encoder.layers.{index}."):]: v for k, v in text_sd.items()
                                                     if k.startswith(f"encoder.layers.{index}.")}
        scope = f"{prefix}transformer.resblocks.{index}."
        for kind in ("weight", "bias"):
            result[scope + f"attn.in_proj_{kind}"] = torch.cat([layer[f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
        for name, tensor in layer.items():
            if not name.startswith(("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.")):
                result[scope + _swap(name, OPENCLIP_LAYER)] = tensor
    result[prefix + "text_projection"] = text_projection
    return result


def to_original_sd2(unet_sd, unet_config, vae_sd, vae_config, text_sd, last_layer, text_projection):
    """An SD 2.x single-file checkpoint state dict: UNet and VAE as in SD 1.x, the text encoder as OpenCLIP."""
    result = {k: v for k, v in to_original(unet_sd, unet_config, vae_sd, vae_config, {}).items()}
    result.update(openclip_original(text_sd, last_layer, text_projection))
    return result


def to_original_sdxl(unet_sd, unet_config, vae_sd, vae_config, text_sd, text_2_sd, projection_weight):
    """An SDXL single-file (SGM) checkpoint state dict: the UNet with its added embedding as `label_emb.0`,
    the VAE as in SD 1.x, CLIP ViT-L under `conditioner.embedders.0.transformer.` and OpenCLIP ViT-bigG under
    `conditioner.embedders.1.model.` with every layer and the projection as the original's transposed matrix
    (`projection_weight` is diffusers' Linear weight [projection, hidden])."""
    added = {k: v for k, v in unet_sd.items() if k.startswith("add_embedding.")}
    result = to_original({k: v for k, v in unet_sd.items() if k not in added}, unet_config, vae_sd, vae_config, {})
    for name, tensor in added.items():
        part = {"linear_1.": "0.", "linear_2.": "2."}[name[len("add_embedding."):][:len("linear_1.")]]
        result["model.diffusion_model.label_emb.0." + part + name.split(".")[-1]] = tensor
    for name, tensor in text_sd.items():
        name = name if name.startswith("text_model.") else "text_model." + name
        if not name.endswith("position_ids"):
            result["conditioner.embedders.0.transformer." + name] = tensor
    result.update(openclip_original(text_2_sd, None, projection_weight.T.contiguous(), prefix="conditioner.embedders.1.model."))
    return result
