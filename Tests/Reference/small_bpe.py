"""A small byte-level BPE vocabulary in CLIP's file format (vocab.json + merges.txt).

Tiny test pipelines and the embedded default model use it instead of CLIP's 49408-token
vocabulary, so their text encoders stay small while the standard CLIP tokenizer reads them.
Layout as CLIP's: 256 byte symbols, the same with "</w>", one symbol per merge, then the
two special tokens.
"""
import collections
import json
import os
import re


def bytes_to_unicode():
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def train(corpus, merge_count):
    """Learns up to `merge_count` merges from the words of `corpus` (a list of strings)."""
    table = bytes_to_unicode()
    words = collections.Counter()
    for text in corpus:
        for word in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", text.lower()):
            symbols = [table[b] for b in word.encode("utf-8")]
            symbols[-1] += "</w>"
            words[tuple(symbols)] += 1
    merges = []
    for _ in range(merge_count):
        pairs = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs.items(), key=lambda item: (item[1], item[0]))[0]
        merges.append(best)
        merged = collections.Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    symbols = list(table.values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(pair) for pair in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(vocab)}, merges


def write(folder, vocab, merges, max_length=77, pad_token="<|endoftext|>"):
    """vocab.json, merges.txt and the tokenizer config of an SD 1.x tokenizer folder (SD 2.x: pad_token "!")."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "bos_token": "<|startoftext|>",
              "eos_token": "<|endoftext|>", "pad_token": pad_token, "unk_token": "<|endoftext|>",
              "do_lower_case": True}
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump({k: config[k] for k in ["bos_token", "eos_token", "pad_token", "unk_token"]}, f, indent=2)
