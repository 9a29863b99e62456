"""Derive the Hugging Face style CLIP tokenizer files (vocab.json, merges.txt) from OpenAI's
bpe_simple_vocab_16e6.txt.gz as shipped in the open-clip-torch wheel. Standard library only.

Usage: make_clip_vocab.py WHEEL_OR_GZ OUTPUT_DIR
"""
import gzip
import io
import json
import os
import sys
import zipfile

from small_bpe import bytes_to_unicode

MERGE_COUNT = 49152 - 256 - 2  # vocabulary 49408 = 2 * 256 byte symbols + merges + 2 specials
MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"


def read_gz(source: str) -> bytes:
    if source.endswith(".whl"):
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(MEMBER)
    with open(source, "rb") as handle:
        return handle.read()


def main() -> None:
    source, output = sys.argv[1], sys.argv[2]
    lines = gzip.decompress(read_gz(source)).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:MERGE_COUNT + 1]]
    if len(merges) != MERGE_COUNT or any(len(pair) != 2 for pair in merges):
        sys.exit(f"error: {source}: expected {MERGE_COUNT} merge lines of two symbols")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        sys.exit(f"error: {source}: duplicate vocabulary entries")
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "vocab.json"), "w", encoding="utf-8") as handle:
        json.dump(vocab, handle, ensure_ascii=False)
    with io.open(os.path.join(output, "merges.txt"), "w", encoding="utf-8", newline="\n") as handle:
        handle.write("#version: 0.2\n")
        handle.writelines(f"{a} {b}\n" for a, b in merges)
    print(f"wrote {output}/vocab.json ({len(vocab)} tokens) and merges.txt ({len(merges)} merges)")


if __name__ == "__main__":
    main()
