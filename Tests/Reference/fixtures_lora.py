"""A tiny LoRA for the tiny SD model, in the namings people's files use, and the merged networks' outputs.

The same low-rank updates (linear layers of the UNet and the text encoder, a 1x1 convolution and a 3x3
LoCon convolution) are written as
- kohya / AUTOMATIC1111: lora_unet_* / lora_te_* with .lora_down.weight, .lora_up.weight, .alpha;
- diffusers / PEFT: unet.* / text_encoder.* with .lora_A.weight / .lora_B.weight (no alpha, so B
  carries alpha / rank);
- diffusers' older attention-processor names (two of the modules).
peft is not in the reference environment, so diffusers' load_lora_weights + fuse_lora cannot run;
the merge is the formats' definition, W + strength * alpha / rank * up @ down (up and down flattened
to matrices, the product reshaped to W), done in torch. Fixtures: Tests/Fixtures/lora/.
"""
import os

import torch
from safetensors.torch import save_file
from diffusers import UNet2DConditionModel
from transformers import CLIPTextModel

from common import FIXTURES, save, seed_all

TINY = os.path.join(FIXTURES, "tiny")
OUT = os.path.join(FIXTURES, "lora")
RANK, ALPHA, STRENGTH = 4, 2.0, 0.8

seed_all(21)
unet = UNet2DConditionModel.from_pretrained(os.path.join(TINY, "unet"), torch_dtype=torch.float32).eval()
text_encoder = CLIPTextModel.from_pretrained(os.path.join(TINY, "text_encoder")).eval()

UNET_MODULES = [
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k",
    "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj",
    "down_blocks.0.attentions.0.proj_in",  # a 1x1 convolution
    "down_blocks.0.resnets.0.conv1",  # LoCon: a 3x3 down, a 1x1 up
    "mid_block.attentions.0.transformer_blocks.0.attn2.to_v",
    "up_blocks.1.resnets.2.time_emb_proj",
]
TEXT_MODULES = ["encoder.layers.0.self_attn.q_proj", "encoder.layers.0.self_attn.out_proj", "encoder.layers.1.mlp.fc1"]


def pair(weight):
    """Random up [out, rank(, 1, 1)] and down [rank, in(, k, k)] for a weight, scaled to change it visibly."""
    out = weight.shape[0]
    if weight.dim() == 4:
        down = torch.randn(RANK, weight.shape[1], weight.shape[2], weight.shape[3]) * 0.3
        up = torch.randn(out, RANK, 1, 1) * 0.3
    else:
        down = torch.randn(RANK, weight.shape[1]) * 0.3
        up = torch.randn(out, RANK) * 0.3
    return up, down


def merged(weight, up, down, scale):
    return weight + scale * (up.flatten(1) @ down.flatten(1)).reshape(weight.shape)


# Copies: state_dict() tensors are the parameters themselves, which load_state_dict overwrites below.
unet_state = {k: v.clone() for k, v in unet.state_dict().items()}
text_state = {k: v.clone() for k, v in text_encoder.state_dict().items()}
updates = {("unet", m): pair(unet_state[m + ".weight"]) for m in UNET_MODULES}
updates.update({("text", m): pair(text_state[m + ".weight"]) for m in TEXT_MODULES})
# Files usually hold fp16; the merge uses exactly the values the kohya file holds.
updates = {key: (up.half().float(), down.half().float()) for key, (up, down) in updates.items()}

kohya, peft = {}, {}
for (component, module), (up, down) in updates.items():
    if component == "unet":
        key, peft_key = "lora_unet_" + module.replace(".", "_"), "unet." + module
    else:
        key, peft_key = "lora_te_text_model_" + module.replace(".", "_"), "text_encoder.text_model." + module
    kohya[key + ".lora_up.weight"] = up.half()
    kohya[key + ".lora_down.weight"] = down.half()
    kohya[key + ".alpha"] = torch.tensor(ALPHA)
    peft[peft_key + ".lora_B.weight"] = up * (ALPHA / RANK)
    peft[peft_key + ".lora_A.weight"] = down

os.makedirs(OUT, exist_ok=True)
save_file({k: v.contiguous() for k, v in sorted(kohya.items())}, os.path.join(OUT, "tiny_kohya.safetensors"),
          metadata={"ss_network_module": "networks.lora"})
save_file({k: v.contiguous() for k, v in sorted(peft.items())}, os.path.join(OUT, "tiny_peft.safetensors"))

# diffusers' attention-processor names, for to_q and to_out.0 of one block.
legacy_modules = UNET_MODULES[:2]
legacy = {}
for module in legacy_modules:
    up, down = updates[("unet", module)]
    block, name = module.rsplit(".to_", 1)
    name = "to_" + name.replace(".0", "")
    legacy[f"unet.{block}.processor.{name}_lora.up.weight"] = up.contiguous()
    legacy[f"unet.{block}.processor.{name}_lora.down.weight"] = down.contiguous()
save_file(legacy, os.path.join(OUT, "tiny_legacy.safetensors"))

# Files to refuse: LyCORIS variants, a module the model does not have, a pair with a missing half.
save_file({"lora_unet_mid_block_attentions_0_proj_in.hada_w1_a": torch.zeros(4, 4),
           "lora_unet_mid_block_attentions_0_proj_in.hada_w1_b": torch.zeros(4, 4)}, os.path.join(OUT, "loha.safetensors"))
save_file({"lora_unet_mid_block_attentions_0_proj_in.lokr_w1": torch.zeros(4, 4)}, os.path.join(OUT, "lokr.safetensors"))
unknown = {k: v for k, v in kohya.items() if "attn1_to_q" in k}
for index in range(7):
    unknown[f"lora_unet_down_blocks_{index + 5}_attentions_0_proj_in.lora_up.weight"] = torch.zeros(32, 4, 1, 1)
    unknown[f"lora_unet_down_blocks_{index + 5}_attentions_0_proj_in.lora_down.weight"] = torch.zeros(4, 32, 1, 1)
save_file(unknown, os.path.join(OUT, "unknown_modules.safetensors"))
save_file({"lora_unet_mid_block_attentions_0_proj_in.lora_up.weight": torch.zeros(64, 4, 1, 1)}, os.path.join(OUT, "half_pair.safetensors"))
save_file({"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(32, 4),
           "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 48)},
          os.path.join(OUT, "misshaped.safetensors"))


def merge_into(state, component, modules, scale):
    state = {k: v.clone() for k, v in state.items()}
    for module in modules:
        up, down = updates[(component, module)]
        state[module + ".weight"] = merged(state[module + ".weight"], up, down, scale)
    return state


sample = torch.randn(2, 4, 8, 8)
context = torch.randn(2, 77, 32)
ids = torch.randint(0, 1000, (2, 77))
with torch.no_grad():
    outputs = {"sample": sample, "context": context, "input_ids": ids.float(),
               "unet_base": unet(sample, 500, encoder_hidden_states=context).sample,
               "text_base": text_encoder(input_ids=ids).last_hidden_state}
    unet.load_state_dict(merge_into(unet_state, "unet", UNET_MODULES, STRENGTH * ALPHA / RANK))
    outputs["unet_lora"] = unet(sample, 500, encoder_hidden_states=context).sample
    text_encoder.load_state_dict(merge_into(text_state, "text", TEXT_MODULES, STRENGTH * ALPHA / RANK))
    outputs["text_lora"] = text_encoder(input_ids=ids).last_hidden_state
    # The legacy file (no alpha: scale 1) at strength 1, after the kohya LoRA at 0.8: they add up.
    both = merge_into(merge_into(unet_state, "unet", UNET_MODULES, STRENGTH * ALPHA / RANK), "unet", legacy_modules, 1.0)
    unet.load_state_dict(both)
    outputs["unet_lora_and_legacy"] = unet(sample, 500, encoder_hidden_states=context).sample
save("lora/outputs.safetensors", outputs, metadata={"strength": str(STRENGTH), "timestep": "500"})
for name in sorted(os.listdir(OUT)):
    print(f"wrote Fixtures/lora/{name} ({os.path.getsize(os.path.join(OUT, name))} bytes)")
