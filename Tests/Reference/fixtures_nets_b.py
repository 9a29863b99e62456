"""Reference fixtures for the UNet: timestep embedding, Transformer2DModel, UNet2DConditionModel.

Writes
  tiny/unet/{config.json,diffusion_pytorch_model.safetensors}   SD 1.x-shaped tiny UNet (fp16 weights)
  nets/unet_sd2/{config.json,diffusion_pytorch_model.safetensors} SD 2.x-style tiny UNet (fp16 weights)
  nets/unet_sd1_io.safetensors, nets/unet_sd2_io.safetensors    inputs and diffusers outputs
  nets/timestep_embedding.safetensors                            sinusoidal embedding + TimestepEmbedding
  nets/transformer2d_{conv,linear}.safetensors                   one Transformer2DModel each, weights under "model."

Weights are seeded random; every bias and every norm weight/bias is perturbed away from 0/1
so a dropped bias or affine term changes the output. The UNets are stored as float16 (like the
fp16 files users download) and the references are computed by diffusers after loading those
files back in float32, i.e. with exactly the weights the Swift side reads.
"""
import json
import os

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.embeddings import TimestepEmbedding, get_timestep_embedding
from diffusers.models.transformers.transformer_2d import Transformer2DModel

from common import FIXTURES, save, seed_all


def perturb(module: torch.nn.Module, attention_gain: float = 2.0) -> None:
    """Random biases and norm affines; sharper attention so softmax errors show."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith(".bias"):
                parameter.copy_(0.1 * torch.randn_like(parameter))
            elif parameter.ndim == 1:  # GroupNorm / LayerNorm weight
                parameter.copy_(1.0 + 0.2 * torch.randn_like(parameter))
            elif name.endswith(("to_q.weight", "to_k.weight")):
                parameter.mul_(attention_gain)


def tiny_unet(config: dict, folder: str) -> UNet2DConditionModel:
    """Builds, perturbs, saves as fp16 safetensors, and reloads in float32 as diffusers users would."""
    model = UNet2DConditionModel(**config)
    perturb(model)
    path = os.path.join(FIXTURES, folder)
    os.makedirs(path, exist_ok=True)
    model.half().save_pretrained(path, safe_serialization=True)
    reloaded = UNet2DConditionModel.from_pretrained(path, torch_dtype=torch.float32).eval()
    weights = os.path.join(path, "diffusion_pytorch_model.safetensors")
    print(f"wrote {folder} ({os.path.getsize(weights)} bytes of fp16 weights)")
    return reloaded


def unet_fixtures() -> None:
    sd1 = dict(
        sample_size=8, in_channels=4, out_channels=4,
        block_out_channels=(32, 64), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=4, cross_attention_dim=32, norm_num_groups=8,
    )
    seed_all(10)
    model = tiny_unet(sd1, "tiny/unet")
    seed_all(11)
    tensors = {
        "sample_8x8": torch.randn(2, 4, 8, 8),
        "sample_8x16": torch.randn(2, 4, 8, 16),
        "encoder_hidden_states": torch.randn(2, 77, 32),
    }
    with torch.no_grad():
        for shape in ("8x8", "8x16"):
            for timestep in (999, 1):
                tensors[f"out_{shape}_t{timestep}"] = model(
                    tensors[f"sample_{shape}"], torch.tensor(timestep), tensors["encoder_hidden_states"]).sample
        # A fractional timestep as the Euler schedulers pass it (float tensor).
        tensors["out_8x8_t250.75"] = model(
            tensors["sample_8x8"], torch.tensor(250.75), tensors["encoder_hidden_states"]).sample
    save("nets/unet_sd1_io.safetensors", tensors, {"model": "tiny/unet"})

    # SD 2.x style: linear proj_in/out, per-block head counts, per-block transformer depth,
    # and the other embedding flip/shift, to exercise the configuration plumbing.
    sd2 = dict(
        sample_size=8, in_channels=4, out_channels=4,
        block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=[2, 4], cross_attention_dim=32, norm_num_groups=8,
        use_linear_projection=True, transformer_layers_per_block=[2, 1],
        flip_sin_to_cos=False, freq_shift=1, upcast_attention=True,
    )
    seed_all(20)
    model = tiny_unet(sd2, "nets/unet_sd2")
    seed_all(21)
    tensors = {
        "sample_16x8": torch.randn(2, 4, 16, 8),
        "encoder_hidden_states": torch.randn(2, 77, 32),
    }
    with torch.no_grad():
        tensors["out_16x8_t500"] = model(
            tensors["sample_16x8"], torch.tensor(500), tensors["encoder_hidden_states"]).sample
    save("nets/unet_sd2_io.safetensors", tensors, {"model": "nets/unet_sd2"})


def timestep_fixtures() -> None:
    seed_all(30)
    timesteps = torch.tensor([999.0, 1.0, 0.0, 500.5])
    tensors = {"timesteps": timesteps}
    # (dimension, flip_sin_to_cos, downscale_freq_shift): SD's setting, the other order, an odd width.
    for dim, flip, shift in [(320, True, 0), (32, False, 1), (33, True, 0)]:
        tensors[f"sinusoidal_{dim}_{int(flip)}_{shift}"] = get_timestep_embedding(timesteps, dim, flip, shift)
    embedding = TimestepEmbedding(32, 128)
    perturb(embedding)
    with torch.no_grad():
        tensors["embedded"] = embedding(get_timestep_embedding(timesteps, 32, True, 0))
    for name, value in embedding.state_dict().items():
        tensors[f"time_embedding.{name}"] = value
    save("nets/timestep_embedding.safetensors", tensors)


def transformer_fixtures() -> None:
    # conv: SD 1.x layout, two transformer blocks. linear: SD 2.x layout with a head width that
    # does not divide the channels (inner dim 45 != 48 channels), as diffusers' integer division gives.
    cases = {
        "conv": dict(channels=32, heads=4, layers=2, linear=False, size=(8, 8)),
        "linear": dict(channels=48, heads=5, layers=1, linear=True, size=(4, 6)),
    }
    for index, (name, case) in enumerate(cases.items()):
        seed_all(40 + index)
        model = Transformer2DModel(
            num_attention_heads=case["heads"], attention_head_dim=case["channels"] // case["heads"],
            in_channels=case["channels"], num_layers=case["layers"], cross_attention_dim=32,
            norm_num_groups=8, use_linear_projection=case["linear"]).eval()
        perturb(model)
        height, width = case["size"]
        tensors = {
            "input": torch.randn(2, case["channels"], height, width),
            "encoder_hidden_states": torch.randn(2, 77, 32),
        }
        with torch.no_grad():
            tensors["output"] = model(tensors["input"], encoder_hidden_states=tensors["encoder_hidden_states"]).sample
        for key, value in model.state_dict().items():
            tensors[f"model.{key}"] = value
        # One metadata entry: safetensors writes several in no fixed order, which would churn the file.
        save(f"nets/transformer2d_{name}.safetensors", tensors, {"case": json.dumps(case, sort_keys=True)})


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    timestep_fixtures()
    transformer_fixtures()
    unet_fixtures()
