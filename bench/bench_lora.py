"""Benchmark: changing the active LoRA on the loaded checkpoint vs a cold checkpoint load, as ratios.

    python bench/bench_lora.py [--repeats 5]

1. activating a LoRA never used on this checkpoint (read the file, add its peft layers) vs a cold load
   of the checkpoint — goal <= 0.1x
2. switching between LoRAs already loaded on the checkpoint (set_adapters) vs a cold load — goal <= 0.1x

Uses a tiny SD1-architecture checkpoint and kohya-format LoRAs built on the fly (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from bench_txt2img import median_time, report  # noqa: E402
from diffusers.utils import logging as diffusers_logging  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from tools.tiny_models import build_tiny_checkpoint, kohya_lora  # noqa: E402
from webui.core.hashing import HashCache  # noqa: E402
from webui.core.prompts import NetworkTag  # noqa: E402
from webui.engine.checkpoints.loader import load_checkpoint  # noqa: E402
from webui.engine.networks.lora import LoraLibrary  # noqa: E402

CPU = torch.device("cpu")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()  # its misleading LOAD REPORT after each LoRA load
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # one adapter per LoRA file
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = build_tiny_checkpoint(folder / "tiny.safetensors", "sd1", seed=0)
        lora_dir = folder / "Lora"
        lora_dir.mkdir()
        # one file per first-time activation, plus two to switch between
        names = [f"fresh{i}" for i in range(args.repeats)] + ["style", "other"]
        for seed, name in enumerate(names):
            save_file(kohya_lora(checkpoint.pipe, seed), lora_dir / f"{name}.safetensors")
        library = LoraLibrary(lora_dir, HashCache(folder / "cache.json"))
        for name in names:
            library.short_hash(library.find(name))  # hash once, as a real library would have by now
        cold = median_time(lambda: load_checkpoint(checkpoint.path, CPU, torch.float32), args.repeats)
        pipe = load_checkpoint(checkpoint.path, CPU, torch.float32).pipe

        def activate(name: str) -> None:
            library.apply(pipe, library.resolve([NetworkTag("lora", name, ("1",))]))

        fresh = iter(names[: args.repeats])
        first_time = median_time(lambda: activate(next(fresh)), args.repeats)
        activate("style"), activate("other")  # both loaded on the pipe now
        toggle = iter(["style", "other"] * args.repeats)
        switch = median_time(lambda: activate(next(toggle)), args.repeats)
        report("LoRA first activation vs cold load", first_time, cold, 0.1)
        report("LoRA switch (already loaded) vs cold load", switch, cold, 0.1)


if __name__ == "__main__":
    main()
