"""Reference data for the tiny autoencoder (TAESD) and tiled VAE decoding.

Writes Tests/Fixtures/taesd/: a small diffusers AutoencoderTiny with seeded random weights (config.json,
diffusion_pytorch_model.safetensors; one 2x upsampling, like the tiny model's VAE of fixtures_nets_a.py)
and reference.safetensors: latents and AutoencoderTiny.decode of them.
Writes Tests/Fixtures/vae_tiling/reference.safetensors: latents and AutoencoderKL.decode with tiling enabled
for the tiny model's VAE (Tests/Fixtures/tiny/vae; its sample_size 32 gives 32-pixel tiles of 16 latents,
so these latents span several tiles, the last ones ragged), and the untiled decode for comparison.
"""
import os

import torch
from diffusers import AutoencoderKL, AutoencoderTiny

from common import FIXTURES, save, seed_all


def taesd():
    seed_all(31)
    model = AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                            num_encoder_blocks=(1, 1), num_decoder_blocks=(2, 1)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            # Wider than the default init so activations stay away from zero through the ReLUs.
            parameter.copy_(torch.randn_like(parameter) * 0.3)
    folder = os.path.join(FIXTURES, "taesd")
    model.save_pretrained(folder, safe_serialization=True)
    print("wrote Fixtures/taesd/config.json, diffusion_pytorch_model.safetensors")
    latents = torch.randn(1, 4, 6, 5) * 2
    batch = torch.randn(2, 4, 3, 4)
    with torch.no_grad():
        decoded = model.decode(latents).sample
        decoded_batch = model.decode(batch).sample
    save("taesd/reference.safetensors", {"latents": latents, "decoded": decoded, "batch": batch, "decoded_batch": decoded_batch})


def tiling():
    seed_all(32)
    vae = AutoencoderKL.from_pretrained(os.path.join(FIXTURES, "tiny", "vae")).eval()
    tensors = {}
    for name, shape in {"grid": (1, 4, 20, 28), "column": (1, 4, 17, 9), "single": (1, 4, 16, 16)}.items():
        latents = torch.randn(*shape)
        with torch.no_grad():
            vae.disable_tiling()
            whole = vae.decode(latents).sample
            vae.enable_tiling()
            tiled = vae.decode(latents).sample
        tensors.update({f"{name}.latents": latents, f"{name}.tiled": tiled, f"{name}.whole": whole})
    save("vae_tiling/reference.safetensors", tensors)


if __name__ == "__main__":
    taesd()
    tiling()
