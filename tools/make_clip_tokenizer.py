"""Derive the CLIP tokenizer files bundled in webui/engine/configs from open_clip's BPE vocabulary.

The vocabulary ships as `open_clip/bpe_simple_vocab_16e6.txt.gz` inside the open_clip_torch wheel
(`pip download --no-deps open_clip_torch -d /tmp/oc`). The ids this produces equal open_clip's and the
Hugging Face `openai/clip-vit-large-patch14` tokenizer's:
"a photo of a cat" -> 49406 320 1125 539 320 2368 49407.

Usage: python tools/make_clip_tokenizer.py /tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl

Writes one shared vocab.json + merges.txt (configs/clip_tokenizer/) and, for every tokenizer folder of the
bundled pipeline configs, the small tokenizer_config.json + special_tokens_map.json that differ only by
pad token. The loader combines the two, so the 2 MB vocabulary is stored once.
"""

from __future__ import annotations

import argparse
import gzip
import json
import zipfile
from pathlib import Path

BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
MERGE_COUNT = 49152 - 256 - 2  # open_clip keeps this many merges; the vocabulary then has 49,408 entries
START, END = "<|startoftext|>", "<|endoftext|>"
CONFIGS = Path(__file__).resolve().parents[1] / "webui" / "engine" / "configs"
SHARED_DIR = "clip_tokenizer"
# (folder under configs/, pad token): SD1 and SDXL's first tokenizer pad with the end token, the
# OpenCLIP ones (SD2, SDXL's second) with "!" (id 0), as in the published pipelines.
TOKENIZER_FOLDERS = (
    (SHARED_DIR, END),
    ("sd1/tokenizer", END),
    ("sd1-inpaint/tokenizer", END),
    ("sd2/tokenizer", "!"),
    ("sd2-v/tokenizer", "!"),
    ("sd2-inpaint/tokenizer", "!"),
    ("sdxl/tokenizer", END),
    ("sdxl/tokenizer_2", "!"),
    ("sdxl-inpaint/tokenizer", END),
    ("sdxl-inpaint/tokenizer_2", "!"),
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable character table (printable bytes map to themselves, in this order)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def read_merges(wheel_or_bpe: Path) -> list[str]:
    """The merge lines ("a b") open_clip uses, from the wheel or from the extracted .txt.gz."""
    if wheel_or_bpe.suffix == ".whl":
        with zipfile.ZipFile(wheel_or_bpe) as wheel:
            raw = wheel.read(BPE_MEMBER)
    else:
        raw = wheel_or_bpe.read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = lines[1 : MERGE_COUNT + 1]  # line 0 is the "#version" header
    if len(merges) != MERGE_COUNT or any(len(m.split(" ")) != 2 for m in merges):
        raise ValueError(f"{wheel_or_bpe}: not open_clip's BPE vocabulary")
    return merges


def build_vocab(merges: list[str]) -> dict[str, int]:
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + [m.replace(" ", "") for m in merges] + [START, END]
    return {token: i for i, token in enumerate(tokens)}


def tokenizer_config(pad_token: str) -> dict[str, object]:
    return {
        "tokenizer_class": "CLIPTokenizer",
        "add_prefix_space": False,
        "bos_token": START,
        "eos_token": END,
        "unk_token": END,
        "pad_token": pad_token,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": 77,
    }


def special_tokens_map(pad_token: str) -> dict[str, str]:
    return {"bos_token": START, "eos_token": END, "unk_token": END, "pad_token": pad_token}


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="open_clip_torch wheel, or bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--configs", type=Path, default=CONFIGS, help="configs folder to write into")
    args = parser.parse_args()

    merges = read_merges(args.source)
    vocab = build_vocab(merges)
    if len(vocab) != 49408:
        raise ValueError(f"vocabulary has {len(vocab)} entries, expected 49408")
    shared = args.configs / SHARED_DIR
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (shared / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    for folder, pad in TOKENIZER_FOLDERS:
        write_json(args.configs / folder / "tokenizer_config.json", tokenizer_config(pad))
        write_json(args.configs / folder / "special_tokens_map.json", special_tokens_map(pad))
    print(f"wrote {len(vocab)} tokens, {len(merges)} merges to {shared}")


if __name__ == "__main__":
    main()
