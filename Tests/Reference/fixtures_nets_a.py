"""Reference outputs for the CLIP text encoder, the VAE and ResnetBlock2D.

Writes tiny, randomly initialised models in the diffusers folder layout
(Tests/Fixtures/tiny/{text_encoder,vae}, loadable with from_pretrained) and
inputs/outputs of PyTorch in Tests/Fixtures/nets/*.safetensors.
Every parameter (including norm weights and biases, which torch initialises
to 1 and 0) is randomised, so a dropped bias or affine term shows up.
"""
import os

import torch
from diffusers import AutoencoderKL
from diffusers.models.resnet import ResnetBlock2D
from transformers import CLIPTextConfig, CLIPTextModel

from common import FIXTURES, save, seed_all


def perturb(module: torch.nn.Module) -> None:
    """Move every 1-D parameter (biases, norm affines) away from its 0/1 initial value."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.dim() == 1:
                parameter.add_(0.2 * torch.randn_like(parameter))
            if "embedding" in name:
                parameter.mul_(5.0)


def text_encoder() -> None:
    seed_all(1)
    config = CLIPTextConfig(
        vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
        layer_norm_eps=1e-5, projection_dim=32, bos_token_id=998, eos_token_id=999, pad_token_id=999,
    )
    model = CLIPTextModel(config).eval()
    perturb(model)
    model.save_pretrained(os.path.join(FIXTURES, "tiny/text_encoder"), safe_serialization=True)
    # Two prompts padded to 77 with the end token, like the SD 1.x tokenizer does.
    ids = torch.full((2, 77), 999, dtype=torch.int64)
    ids[0, :6] = torch.tensor([998, 12, 345, 678, 5, 999])
    ids[1, :1] = 998
    ids[1, 1:40] = torch.randint(0, 998, (39,))
    with torch.no_grad():
        hidden = model(input_ids=ids).last_hidden_state
    save("nets/text_encoder.safetensors", {"input_ids": ids.float(), "last_hidden_state": hidden})


def vae() -> None:
    seed_all(2)
    model = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
        sample_size=32, scaling_factor=0.18215,
    ).eval()
    perturb(model)
    model.save_pretrained(os.path.join(FIXTURES, "tiny/vae"), safe_serialization=True)
    latents = torch.randn(1, 4, 8, 8)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        decoded = model.decode(latents).sample
        posterior = model.encode(image).latent_dist
    save("nets/vae.safetensors", {
        "latents": latents, "decoded": decoded,
        "image": image, "mean": posterior.mean, "std": posterior.std,
    })


def resnet_block() -> None:
    seed_all(3)
    block = ResnetBlock2D(in_channels=32, out_channels=64, temb_channels=48, groups=8, eps=1e-5).eval()
    perturb(block)
    x = torch.randn(2, 32, 8, 8)
    temb = torch.randn(2, 48)
    with torch.no_grad():
        out = block(x, temb)
    tensors = {"block." + name: value for name, value in block.state_dict().items()}
    tensors.update({"x": x, "temb": temb, "out": out})
    save("nets/resnet_block.safetensors", tensors)


if __name__ == "__main__":
    text_encoder()
    vae()
    resnet_block()
