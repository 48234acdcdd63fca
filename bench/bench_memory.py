"""GPU memory and speed of each memory mode, for a full-size SD1.5-shaped model (random weights).

    python bench/bench_memory.py [--size 512] [--steps 20]

For each mode (default fp16, --no-half, --no-half-vae, --upcast-sampling, --medvram, --lowvram) a fresh
pipeline is built from the bundled SD1 configs (860 M-parameter UNet, nothing downloaded), the mode is
applied exactly as the ModelManager applies it (engine.memory.prepare_pipe), and one txt2img run with CFG
is timed. Printed: peak VRAM (torch.cuda.max_memory_allocated over the whole run, decode included) and
denoising it/s (sampling steps / seconds spent in the denoising loop). Needs a CUDA GPU; refuses on a
CPU-only machine. Results go into docs/memory.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from diffusers import schedulers as diffusers_schedulers  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

from webui.engine.checkpoints import memory  # noqa: E402
from webui.engine.checkpoints.components import CONFIGS, TOKENIZER_DIR  # noqa: E402
from webui.engine.checkpoints.memory import MemoryFlags  # noqa: E402
from webui.engine.devices import DeviceChoice  # noqa: E402

MODES: dict[str, tuple[MemoryFlags, torch.dtype]] = {
    "fp16 (default)": (MemoryFlags(), torch.float16),
    "--no-half": (MemoryFlags(), torch.float32),
    "--no-half-vae": (MemoryFlags(no_half_vae=True), torch.float16),
    "--upcast-sampling": (MemoryFlags(upcast_sampling=True), torch.float16),
    "--medvram": (MemoryFlags(medvram=True), torch.float16),
    "--lowvram": (MemoryFlags(lowvram=True), torch.float16),
}


def _config(component: str, file: str = "config.json") -> dict[str, Any]:
    return json.loads((CONFIGS / "sd1" / component / file).read_text(encoding="utf-8"))


def full_size_pipe(dtype: torch.dtype) -> StableDiffusionPipeline:
    """SD1.5's shapes with random weights, in RAM (the mode decides what goes to the GPU)."""
    torch.manual_seed(0)
    scheduler_config = _config("scheduler", "scheduler_config.json")
    scheduler_class = getattr(diffusers_schedulers, scheduler_config["_class_name"])
    tokenizer = _config("tokenizer", "tokenizer_config.json")
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_config(_config("vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_dict(_config("text_encoder"))),
        tokenizer=CLIPTokenizer.from_pretrained(
            TOKENIZER_DIR, local_files_only=True, pad_token=tokenizer["pad_token"], model_max_length=77
        ),
        unet=UNet2DConditionModel.from_config(_config("unet")),
        scheduler=scheduler_class.from_config(scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dtype=dtype)


def measure(name: str, flags: MemoryFlags, dtype: torch.dtype, size: int, steps: int) -> None:
    device = DeviceChoice(torch.device("cuda"), dtype)
    pipe = full_size_pipe(dtype)
    if memory.prepare_pipe(pipe, "sd1", flags, device) == "none":
        pipe.to(device.device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    loop: list[float] = []

    def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        torch.cuda.synchronize()
        loop.append(time.perf_counter())
        return tensors

    unet_dtype = pipe.unet.dtype
    generator = torch.Generator("cpu").manual_seed(1)
    latents = torch.randn((1, 4, size // 8, size // 8), generator=generator).to(
        memory.sampling_dtype(flags, device, unet_dtype)
    )
    with torch.inference_mode():
        with memory.sampling_autocast(flags, device, unet_dtype):
            start = time.perf_counter()
            output = pipe(
                prompt="a photo of a cat",
                negative_prompt="blurry",
                num_inference_steps=steps,
                width=size,
                height=size,
                latents=latents,
                output_type="latent",
                callback_on_step_end=on_step_end,
            )
        memory.decode_latents(pipe, output.images)
    torch.cuda.synchronize()
    # the first step includes text encoding and warm-up: rate over the steps after it
    rate = (len(loop) - 1) / (loop[-1] - loop[0]) if len(loop) > 1 else steps / (loop[-1] - start)
    peak = torch.cuda.max_memory_allocated() / 2**30
    run = f"{size}x{size}, {steps} steps, CFG"
    print(f"{name:<20} peak VRAM {peak:6.2f} GiB   {rate:6.2f} it/s   ({run})", flush=True)
    del pipe, output
    torch.cuda.empty_cache()


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit(
            "bench_memory.py measures GPU memory and speed: it needs a CUDA GPU, and torch sees none here "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False). Nothing was measured."
        )
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    for name, (flags, dtype) in MODES.items():
        measure(name, flags, dtype, args.size, args.steps)


if __name__ == "__main__":
    main()
