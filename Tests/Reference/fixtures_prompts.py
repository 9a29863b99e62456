"""AUTOMATIC1111 prompt handling, restated from its documented behaviour, on the tiny text encoder.

The webui's prompt path (modules/prompt_parser.py `parse_prompt_attention`, modules/sd_hijack_clip.py
`tokenize_line` / `process_tokens`, modules/sd_emphasis.py "Original") is written down here in our
own words:

- attention syntax: `(x)` x1.1, `[x]` /1.1, `(x:w)`, escapes, unbalanced brackets, BREAK;
- chunks of 75 tokens, each with its own start/end/padding, ending at a comma within the last 20
  tokens when there is one, BREAK starting a new chunk;
- "Original" emphasis: hidden states times the token weights, then rescaled to the old mean;
- clip skip N: hidden_states[-N] through the final layer norm.

The parser is checked against the examples in A1111's own docstring, clip skip against diffusers'
`encode_prompt(clip_skip=N - 1)`, and an unweighted short prompt against the plain tokenizer and
encoder (as diffusers encodes it). Fixtures: Tests/Fixtures/prompts/.
"""
import json
import os

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel, AutoencoderKL
from transformers import CLIPTextModel, CLIPTokenizer

from common import FIXTURES, save

TINY = os.path.join(FIXTURES, "tiny")
CHUNK = 75
COMMA_BACKTRACK = 20
ESCAPABLE = "()[]\\"
SPECIAL = "\\()[]:"


def split_breaks(text):
    """Splits at the word BREAK (upper case, not inside a longer word), eating white space around it."""
    parts, start, search = [], 0, 0
    while True:
        at = text.find("BREAK", search)
        if at < 0:
            break
        end = at + 5
        word_before = at > 0 and (text[at - 1].isalnum() or text[at - 1] == "_")
        word_after = end < len(text) and (text[end].isalnum() or text[end] == "_")
        if word_before or word_after:
            search = at + 1
            continue
        left = at
        while left > start and text[left - 1].isspace():
            left -= 1
        right = end
        while right < len(text) and text[right].isspace():
            right += 1
        parts.append(text[start:left])
        start = search = right
    parts.append(text[start:])
    return parts


def parse_attention(prompt):
    """[(text, weight)] with BREAK as ("BREAK", -1); runs of equal weight merged."""
    out, round_open, square_open = [], [], []

    def scale(start, factor):
        for item in out[start:]:
            item[1] *= factor

    def plain(text):
        for index, part in enumerate(split_breaks(text)):
            if index:
                out.append(["BREAK", -1.0])
            out.append([part, 1.0])

    i = 0
    while i < len(prompt):
        c = prompt[i]
        if c == "\\":
            if i + 1 < len(prompt) and prompt[i + 1] in ESCAPABLE:
                out.append([prompt[i + 1], 1.0])
                i += 2
            else:
                out.append(["", 1.0])  # a stray backslash vanishes
                i += 1
        elif c == "(":
            round_open.append(len(out))
            i += 1
        elif c == "[":
            square_open.append(len(out))
            i += 1
        elif c == ":":
            j = i + 1
            if j < len(prompt) and prompt[j] in "+-":
                j += 1
            k = j
            while k < len(prompt) and (prompt[k] == "." or prompt[k].isdecimal()):
                k += 1
            if k > j and k < len(prompt) and prompt[k] == ")":
                if round_open:
                    scale(round_open.pop(), float(prompt[i + 1:k]))
                else:
                    plain(prompt[i:k + 1])
                i = k + 1
            else:
                plain(":")
                i += 1
        elif c == ")" and round_open:
            scale(round_open.pop(), 1.1)
            i += 1
        elif c == "]" and square_open:
            scale(square_open.pop(), 1 / 1.1)
            i += 1
        elif c in ")]":
            plain(c)
            i += 1
        else:
            j = i
            while j < len(prompt) and prompt[j] not in SPECIAL:
                j += 1
            plain(prompt[i:j])
            i = j
    for start in round_open:
        scale(start, 1.1)
    for start in square_open:
        scale(start, 1 / 1.1)
    if not out:
        return [["", 1.0]]
    merged = [out[0]]
    for text, weight in out[1:]:
        if merged[-1][1] == weight:
            merged[-1][0] += text
        else:
            merged.append([text, weight])
    return merged


# The examples of A1111's parse_prompt_attention docstring.
assert parse_attention("normal text") == [["normal text", 1.0]]
assert parse_attention("an (important) word") == [["an ", 1.0], ["important", 1.1], [" word", 1.0]]
assert parse_attention("(unbalanced") == [["unbalanced", 1.1]]
assert parse_attention("\\(literal\\]") == [["(literal]", 1.0]]
assert parse_attention("(unnecessary)(parens)") == [["unnecessaryparens", 1.1]]
assert parse_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).") == [
    ["a ", 1.0], ["house", 1.5730000000000004], [" ", 1.1], ["on", 1.0], [" a ", 1.1], ["hill", 0.55],
    [", sun, ", 1.1], ["sky", 1.4641000000000006], [".", 1.1]]


def chunks(prompt, tokenizer):
    """[(ids[77], weights[77])] as A1111's tokenize_line lays them out."""
    start, end, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    comma = tokenizer.get_vocab().get(",</w>")
    result, tokens, weights = [], [], []
    last_comma = -1

    def close():
        nonlocal tokens, weights, last_comma
        missing = CHUNK - len(tokens)
        ids = [start] + tokens + [end] * max(missing, 0) + [end]
        first_end = ids.index(end)
        ids = ids[:first_end + 1] + [pad] * (len(ids) - first_end - 1)
        result.append((ids, [1.0] + weights + [1.0] * max(missing, 0) + [1.0]))
        tokens, weights, last_comma = [], [], -1

    for text, weight in parse_attention(prompt):
        if text == "BREAK" and weight == -1:
            close()
            continue
        for token in tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]:
            if token == comma:
                last_comma = len(tokens)
            elif len(tokens) == CHUNK and last_comma != -1 and CHUNK - last_comma <= COMMA_BACKTRACK:
                keep = last_comma + 1
                moved = tokens[keep:], weights[keep:]
                tokens, weights = tokens[:keep], weights[:keep]
                close()
                tokens, weights = list(moved[0]), list(moved[1])
            if len(tokens) == CHUNK:
                close()
            tokens.append(token)
            weights.append(weight)
    if tokens or not result:
        close()
    return result


def encode(model, prompt_chunks, clip_skip):
    """[1, 77 * chunks, hidden]: each chunk encoded alone, emphasised, then joined."""
    outputs = []
    for ids, weights in prompt_chunks:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
            z = out.last_hidden_state if clip_skip == 1 else model.final_layer_norm(out.hidden_states[-clip_skip])
        multipliers = torch.tensor(weights, dtype=torch.float32)
        original_mean = z.mean()
        z = z * multipliers.reshape(1, -1, 1)
        z = z * (original_mean / z.mean())
        outputs.append(z)
    return torch.cat(outputs, dim=1)


tokenizer = CLIPTokenizer.from_pretrained(os.path.join(TINY, "tokenizer"))
model = CLIPTextModel.from_pretrained(os.path.join(TINY, "text_encoder")).eval()

LONG_COMMAS = ", ".join(["a red circle on a blue background"] * 12)
LONG_PLAIN = " ".join(["a small green triangle"] * 20)
# name, prompt, clip skips whose hidden states are stored (none: tokens and weights only)
CASES = [
    ("fox", "a (red:1.3) fox, [blurry]", [1, 2]),
    ("docstring", "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", [1]),
    ("plain", "a red circle on a blue background", [1, 2]),
    ("empty", "", [1]),
    ("break", "a red circle BREAK on a blue background", [1]),
    ("double_break", "blurry BREAK BREAK low quality", []),
    ("leading_break", "BREAK a square", []),
    ("break_in_brackets", "(a BREAK b)", []),
    ("long_commas", LONG_COMMAS, [1]),
    ("long_plain", LONG_PLAIN, [1, 2]),
    ("escapes", "a \\(b\\) \\[c\\] \\\\ d\\e", []),
    ("stray", "x:1.5) y ] ) ([z", []),
    ("colons", "(a:1.5 b) (c:-0.5) (d:+2) (e:.5) (f:1.) g:h", []),
    ("nested", "((a [b [c]] d):0.8) e", []),
    ("unicode", "(große:1.2) straße BREAKfast", []),
]

tensors, metadata = {}, {"cases": json.dumps([name for name, _, _ in CASES])}
for name, prompt, skips in CASES:
    laid_out = chunks(prompt, tokenizer)
    metadata[f"{name}.prompt"] = prompt
    metadata[f"{name}.segments"] = json.dumps(parse_attention(prompt))
    metadata[f"{name}.clip_skips"] = json.dumps(skips)
    tensors[f"{name}.ids"] = torch.tensor([ids for ids, _ in laid_out], dtype=torch.float32)
    tensors[f"{name}.weights"] = torch.tensor([w for _, w in laid_out], dtype=torch.float32)
    for skip in skips:
        tensors[f"{name}.hidden.{skip}"] = encode(model, laid_out, skip)

# A short prompt without syntax is what the plain tokenizer and encoder give (diffusers' path).
plain_ids = tokenizer("a red circle on a blue background", padding="max_length", max_length=77)["input_ids"]
assert tensors["plain.ids"][0].long().tolist() == plain_ids
with torch.no_grad():
    assert torch.equal(tensors["plain.hidden.1"], model(input_ids=torch.tensor([plain_ids])).last_hidden_state)
assert tensors["long_commas.ids"].shape[0] == 2 and tensors["long_plain.ids"].shape[0] == 2

pipe = StableDiffusionPipeline(
    vae=AutoencoderKL.from_pretrained(os.path.join(TINY, "vae")), text_encoder=model, tokenizer=tokenizer,
    unet=UNet2DConditionModel.from_pretrained(os.path.join(TINY, "unet"), torch_dtype=torch.float32),
    scheduler=DDIMScheduler.from_pretrained(os.path.join(TINY, "scheduler")),
    safety_checker=None, feature_extractor=None, requires_safety_checker=False)
pipe.set_progress_bar_config(disable=True)
# diffusers 0.42 reaches the final layer norm through `text_model`, which transformers 5 no longer has.
object.__setattr__(model, "text_model", model)
for skip in (1, 2):
    # diffusers counts the layers skipped: its clip_skip=1 is A1111's 2.
    reference, _ = pipe.encode_prompt("a red circle on a blue background", "cpu", 1, False, clip_skip=skip - 1 or None)
    assert torch.allclose(reference, tensors[f"plain.hidden.{skip}"], atol=1e-6), f"clip skip {skip} differs from diffusers"

save("prompts/cases.safetensors", tensors, metadata)


def denoise(prompt, negative, clip_skip, seed, steps=4, guidance=7.5, width=48, height=32):
    """DDIM with A1111 conditioning: a prompt and negative prompt of different lengths run apart."""
    cond = encode(model, chunks(prompt, tokenizer), clip_skip)
    uncond = encode(model, chunks(negative, tokenizer), clip_skip)
    scheduler = DDIMScheduler.from_pretrained(os.path.join(TINY, "scheduler"))
    scheduler.set_timesteps(steps)
    generator = torch.Generator("cpu").manual_seed(seed)
    factor = pipe.vae_scale_factor
    latents = torch.randn((1, 4, height // factor, width // factor), generator=generator) * scheduler.init_noise_sigma
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.scale_model_input(latents, t)
            if cond.shape == uncond.shape:
                noise_uncond, noise_cond = pipe.unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([uncond, cond])).sample.chunk(2)
            else:
                noise_uncond = pipe.unet(x, t, encoder_hidden_states=uncond).sample
                noise_cond = pipe.unet(x, t, encoder_hidden_states=cond).sample
            noise = noise_uncond + guidance * (noise_cond - noise_uncond)
            latents = scheduler.step(noise, t, latents).prev_sample
    return latents, cond, uncond


# Same length: the loop above equals diffusers fed the same embeddings.
same, cond, uncond = denoise("a (red:1.3) circle, [blurry]", "low (quality)", 2, 5)
with torch.no_grad():
    piped = pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, num_inference_steps=4, guidance_scale=7.5,
                 width=48, height=32, generator=torch.Generator("cpu").manual_seed(5), output_type="latent").images
assert torch.allclose(same, piped, atol=1e-5), "manual DDIM loop differs from diffusers"

CASES = [  # name, prompt, negative prompt, clip skip, seed
    ("weighted", "a (red:1.3) circle, [blurry]", "low (quality)", 2, 5),
    ("long", LONG_COMMAS + ", (yellow square:1.2)", "blurry", 1, 11),
]
for name, prompt, negative, clip_skip, seed in CASES:
    latents, cond, uncond = denoise(prompt, negative, clip_skip, seed)
    save(f"prompts/ddim_{name}.safetensors", {"latents": latents},
         metadata={"prompt": prompt, "negative_prompt": negative, "clip_skip": str(clip_skip), "seed": str(seed),
                   "steps": "4", "guidance_scale": "7.5", "width": "48", "height": "32",
                   "prompt_tokens": str(cond.shape[1]), "negative_tokens": str(uncond.shape[1])})
