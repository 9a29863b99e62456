"""Writes the fuzz seed corpus, Tests/Fuzz/Corpus/TARGET/seed-*: a few small valid inputs per target and
the edge cases we know of (python3 Tests/Fuzz/make_seeds.py; standard library only). Inputs a fuzzer
crashed on are kept next to them as crash-* files, written by hand from the fuzzer's artifact."""
import base64
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "Tests", "Fuzz", "Corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, "seed-" + name), "wb") as file:
        file.write(data)


def safetensors(tensors, metadata=None):
    """tensors: name -> (dtype, shape, raw bytes)."""
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def png(width, height, color_type=2, rows=None, chunks=()):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    raw = rows if rows is not None else b"".join(b"\0" + bytes((x * 37 + y * 11) % 256 for x in range(width * channels)) for y in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
    for kind, value in chunks:
        body += chunk(kind, value)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def model_config(component, name="config.json"):
    with open(os.path.join(ROOT, "Models", "sfumato-shapes", component, name)) as file:
        return file.read()


def main():
    f32 = lambda *values: struct.pack("<%df" % len(values), *values)
    write("safetensors", "f32-f16-bf16", safetensors({
        "a": ("F32", [2, 2], f32(1, 2, 3, 4)), "b": ("F16", [3], struct.pack("<3e", 1, -2, 0.5)),
        "c": ("BF16", [1], struct.pack("<H", 0x3F80))}, {"format": "pt"}))
    write("safetensors", "zero-size", safetensors({"empty": ("F32", [0, 4], b""), "scalar": ("F32", [], f32(7))}))
    write("safetensors", "integer-dtype", safetensors({"ids": ("I64", [2], struct.pack("<2q", 1, 2))}))
    write("safetensors", "huge-claim", struct.pack("<Q", 80) + json.dumps(
        {"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40000000000]}}).encode().ljust(80))
    write("safetensors", "lora", safetensors({
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": ("F32", [1, 2], f32(1, 2)),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": ("F32", [2, 1], f32(3, 4)),
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": ("F32", [], f32(1))}))
    # A single-file SD 1.x checkpoint as ModelFiles sees it: CLIP ViT-L width, a zero-length vocabulary.
    write("safetensors", "checkpoint-sd1", safetensors({
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": ("F32", [0, 768], b""),
        "model.diffusion_model.conv_in.weight": ("F32", [1], f32(0)),
        "first_stage_model.decoder.conv_in.weight": ("F32", [1], f32(0))}))

    write("json", "object", '{"a": [1, 2.5e3, -0.0, true, false, null], "b": {"c": "\\u00e9\\ud83d\\ude00\\n"}}')
    write("json", "duplicate-keys", '{"k": 1, "k": 2}')
    write("json", "deep", "[" * 63 + "]" * 63)
    write("json", "numbers", "[1e400, -1e-400, 123456789012345678901234567890, 0.1]")

    write("unet-config", "default-model", model_config("unet"))
    unet = json.loads(model_config("unet"))
    write("unet-config", "heads-not-dividing", json.dumps(dict(unet, attention_head_dim=5)))
    write("unet-config", "per-block-lists", json.dumps(dict(unet, attention_head_dim=[4, 4, 4], layers_per_block=[1, 1, 1])))
    write("unet-config", "inpainting", json.dumps(dict(unet, in_channels=9)))
    write("vae-config", "default-model", model_config("vae"))
    vae = json.loads(model_config("vae"))
    write("vae-config", "zero-scaling", json.dumps(dict(vae, scaling_factor=0, latent_channels=8)))
    write("text-config", "default-model", model_config("text_encoder"))
    text = json.loads(model_config("text_encoder"))
    write("text-config", "gelu-one-layer", json.dumps(dict(text, hidden_act="gelu", num_hidden_layers=1)))
    write("scheduler-config", "default-model", model_config("scheduler", "scheduler_config.json"))
    scheduler = json.loads(model_config("scheduler", "scheduler_config.json"))
    write("scheduler-config", "karras-v", json.dumps(dict(scheduler, prediction_type="v_prediction", use_karras_sigmas=True,
                                                          timestep_spacing="trailing", rescale_betas_zero_snr=True)))
    write("scheduler-config", "few-train-steps", json.dumps(dict(scheduler, num_train_timesteps=2, steps_offset=5, beta_schedule="linear")))
    with open(os.path.join(ROOT, "Tests", "Fixtures", "taesd", "config.json")) as file:
        taesd = file.read()
    write("taesd-config", "fixture", taesd)
    write("taesd-config", "one-block", json.dumps(dict(json.loads(taesd), decoder_block_out_channels=[8], num_decoder_blocks=[1])))

    write("png", "rgb", png(5, 3))
    write("png", "rgba-text", png(2, 2, 6, chunks=[(b"tEXt", b"parameters\0a cat"), (b"iTXt", b"k\0\0\0\0\0\xc3\xa9")]))
    write("png", "gray", png(3, 1, 0))
    write("png", "huge-header", png(100000, 100000, rows=b"\0"))
    write("png", "empty-text", png(1, 1, chunks=[(b"iTXt", b"k\0\0\0")]))

    for name, text in [("ascii", "a photograph of an astronaut riding a horse"), ("unicode", "écoute 東京 😀 naïve café\u0301"),
                       ("contractions", "it's they'll we've I'M"), ("numbers", "1234567 3.14 ２０２６"),
                       ("controls", "\x00\x01\t\r\n\u200b\ufeff end"), ("long-word", "a" * 300)]:
        write("tokenizer", name, text)
    for name, text in [("weights", "a (red:1.5) circle, [blue] ((background)), (x:-0.5)"), ("escapes", r"\(not\) \[weighted\] \\ end"),
                       ("break", "one BREAK two BREAKfast (three BREAK four)"), ("unclosed", "((a [b c:1.2"),
                       ("lora", "a cat <lora:style:0.8> <lora:x:1:0.5> <hypernet:y:2> <lora:>"), ("digits", "(a:١.٥) (b:1.) (c:.5) (d:1.2.3)")]:
        write("prompt", name, text)

    tiny = base64.b64encode(png(16, 16)).decode()
    write("a1111-request", "txt2img", json.dumps({"prompt": "a red circle", "negative_prompt": "blurry", "steps": 4, "cfg_scale": 5,
                                                  "width": 64, "height": 64, "seed": 1, "sampler_name": "DPM++ 2M", "scheduler": "Karras",
                                                  "batch_size": 2, "n_iter": 2, "override_settings": {"CLIP_stop_at_last_layers": 2}}))
    write("a1111-request", "img2img", json.dumps({"prompt": "x", "init_images": ["data:image/png;base64," + tiny], "mask": tiny,
                                                  "inpainting_mask_invert": 1, "denoising_strength": 0.5, "steps": 4}))
    write("a1111-request", "huge-batch", json.dumps({"prompt": "x", "batch_size": 4611686018427387904, "n_iter": 4}))
    write("openai-request", "generation", json.dumps({"prompt": "a blue square", "n": 2, "size": "64x64", "steps": 3,
                                                      "response_format": "b64_json", "guidance_scale": 4, "sampler": "euler_a", "seed": 9}))
    write("openai-request", "auto-size", json.dumps({"prompt": "", "size": "auto", "model": "sfumato-shapes"}))


main()
