"""CLIP tokenizer reference ids: transformers CLIPTokenizer over the vocabulary `make vocab` derives.

Writes Tests/Fixtures/tokenizer/ids.json. In transformers 5 `CLIPTokenizer` and `CLIPTokenizerFast`
are the same `tokenizers`-backed class (no ftfy, no slow Python path); both names are checked.
"""
import json
import os
import sys

import transformers
from transformers import CLIPTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(ROOT, ".cache", "clip-vocab")
OUTPUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer", "ids.json")

PROMPTS = [
    "a photo of an astronaut riding a horse on mars",
    "",
    "   ",
    "café, naïve Ångström, crème brûlée, Zoë",
    "cafe\u0301 with a combining accent, \u212b sign",
    "the 1920s, pi is 3.14, a 2x4 board, 1,000,000 and ½ ¾ ² Ⅻ",
    "wow!!! wait... really?! (yes) [no] {maybe} a--b #tag @user $5 100% a&b",
    "it's, don't, we'll, they're, I'd, o'clock, you've, I'm, IT'S, rock'n'roll, 'quoted'",
    "a cat 🐱 with a hat 🎩 and a family 👨‍👩‍👧 🇯🇵 ❤️",
    "日本語の文章、中文句子，한국어 문장",
    "fish &amp; chips &lt;3 &quot;quoted&quot; &#39;x&#39; &nbsp;",
    "a  lot\tof \t tabs\n\nand\r\nnewlines \u00a0 nbsp \u3000 ideographic\u2003space",
    "A PHOTO OF AN ASTRONAUT, Highly Detailed, 8K, TRENDING ON ArtStation",
    "Москва зимой, ΟΔΟΣ Αθήνα, Straße, İstanbul, ǅemal",
    "masterpiece, best quality, (portrait:1.2) of a girl, [blue hair], <lora:foo:0.8>, --ar 16:9",
    "a<|endoftext|>b <|startoftext|> <|ENDOFTEXT|>",
    "zero\u200bwidth, soft\u00adhyphen, control\u0001char, replacement\ufffdchar",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic",
    "https://example.com/path?query=1&x=2 user@example.com C:\\Users\\me",
    "mixed: Résumé 日本 emoji🙂 123abc abc123 l33t ½price",
    ", ".join(["a beautiful landscape with mountains and rivers at sunset"] * 10),
    " ".join(str(number) for number in range(100)),
]


def main() -> None:
    if not os.path.exists(os.path.join(VOCAB, "vocab.json")):
        sys.exit("error: run `make vocab` first")
    files = dict(vocab=os.path.join(VOCAB, "vocab.json"), merges=os.path.join(VOCAB, "merges.txt"))
    tokenizer = CLIPTokenizer(**files)
    fast = transformers.CLIPTokenizerFast(**files)
    sd2 = CLIPTokenizer(**files, pad_token="!")
    known = [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407]

    def encode(model, prompt):
        return model(prompt, padding="max_length", max_length=77, truncation=True)["input_ids"]

    assert encode(tokenizer, PROMPTS[0])[:12] == known, "known vector mismatch"
    cases = []
    for prompt in PROMPTS:
        ids = encode(tokenizer, prompt)
        assert ids == encode(fast, prompt), prompt
        assert len(ids) == 77 and ids[0] == 49406
        cases.append({"prompt": prompt, "ids": ids})
    pad_cases = [{"prompt": prompt, "ids": encode(sd2, prompt)} for prompt in PROMPTS[:2]]
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w", encoding="utf-8") as handle:
        json.dump({"transformers": transformers.__version__, "max_length": 77, "cases": cases,
                   "pad_token_bang": pad_cases}, handle, ensure_ascii=False, indent=0)
        handle.write("\n")
    print(f"wrote {os.path.relpath(OUTPUT, ROOT)} ({os.path.getsize(OUTPUT)} bytes, {len(cases)} prompts)")


if __name__ == "__main__":
    main()
