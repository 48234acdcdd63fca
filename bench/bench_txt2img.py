"""Benchmarks for the txt2img path, printed as ratios to a baseline measured in the same process.

    python bench/bench_txt2img.py [--size 64] [--steps 8] [--repeats 5]

1. our txt2img (queue + engine, no saving) vs a raw diffusers pipeline call on the same components,
   same steps, sampler and seed — goal <= 1.03x
2. switching to a cached checkpoint vs a cold load — goal <= 0.05x
3. our cold load vs diffusers' from_single_file with a local config folder — goal <= 1.0x
4. `python launch.py --skip-install` until the first page is served (seconds; no baseline exists)

Uses tiny SD1-architecture checkpoints built on the fly (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402
from diffusers.utils import logging as diffusers_logging  # noqa: E402

from tools.tiny_models import build_tiny_checkpoint  # noqa: E402
from webui.app import App  # noqa: E402
from webui.core import samplers  # noqa: E402
from webui.core.cmd_args import parse_args  # noqa: E402
from webui.core.params import Txt2Img  # noqa: E402
from webui.engine.checkpoints.loader import load_checkpoint  # noqa: E402
from webui.engine.rng import image_noise  # noqa: E402
from webui.engine.sampling.schedulers import make_scheduler  # noqa: E402


def median_time(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, ours: float, baseline: float, goal: float) -> None:
    ratio = ours / baseline
    verdict = "ok" if ratio <= goal else "MISSED"
    print(
        f"{name:<44} {ours * 1000:9.1f} ms vs {baseline * 1000:9.1f} ms  "
        f"ratio {ratio:6.3f}  goal <= {goal}  {verdict}"
    )


def bench_generation(app: App, size: int, steps: int, repeats: int) -> None:
    params = Txt2Img(
        prompt="a red circle",
        negative_prompt="blue",
        steps=steps,
        width=size,
        height=size,
        seed=1,
        sampler_name="Euler a",
    )
    loaded = app.manager.get()
    pipe = loaded.pipe
    choice = samplers.resolve(params.sampler_name, params.scheduler)
    factor = pipe.vae_scale_factor

    def raw() -> None:
        pipe.scheduler = make_scheduler(choice, pipe.scheduler.config)
        noise = image_noise((4, size // factor, size // factor), [1])  # seed 1, our default source
        generators = [torch.Generator("cpu").manual_seed(1)]
        with torch.inference_mode():
            pipe(
                prompt=[params.prompt],
                negative_prompt=[params.negative_prompt],
                num_inference_steps=steps,
                width=size,
                height=size,
                latents=noise,
                generator=generators,
                output_type="pil",
            )

    def ours() -> None:
        app.generate(params, save_images=False)

    ours(), raw()  # warm up both paths
    # Interleave the two so that a busy machine slows both alike.
    ours_times, raw_times = [], []
    for _ in range(repeats):
        ours_times.append(median_time(ours, 1))
        raw_times.append(median_time(raw, 1))
    report(
        f"txt2img {size}x{size}, {steps} steps",
        statistics.median(ours_times),
        statistics.median(raw_times),
        1.03,
    )


def bench_loading(app: App, first: Path, second: Path, config_dir: Path, repeats: int) -> None:
    cpu = torch.device("cpu")
    cold = median_time(lambda: load_checkpoint(first, cpu, torch.float32), repeats)
    single_file = median_time(
        lambda: StableDiffusionPipeline.from_single_file(
            str(first), config=str(config_dir), local_files_only=True, safety_checker=None
        ),
        repeats,
    )
    app.manager.get(first.name)
    app.manager.get(second.name)

    def swap_back_and_forth() -> None:
        app.manager.get(first.name)
        app.manager.get(second.name)

    cached = median_time(swap_back_and_forth, repeats) / 2
    report("cached checkpoint swap vs cold load", cached, cold, 0.05)
    report("cold load vs from_single_file", cold, single_file, 1.0)


def bench_launch(data_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        str(ROOT / "launch.py"),
        "--skip-install",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
    ]
    start = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("launch.py exited before serving") from None
                time.sleep(0.2)
        print(f"{'launch.py start to first served page':<44} {time.perf_counter() - start:9.2f} s")
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    diffusers_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        ckpt_dir = data_dir / "models" / "Stable-diffusion"
        first = build_tiny_checkpoint(ckpt_dir / "first.safetensors", "sd1", seed=0)
        second = build_tiny_checkpoint(ckpt_dir / "second.safetensors", "sd1", seed=1)
        config_dir = data_dir / "first-config"
        first.pipe.save_config(config_dir)  # model_index.json + every component's config, no weights
        for name in ("unet", "vae"):
            getattr(first.pipe, name).save_config(config_dir / name)
        first.pipe.text_encoder.config.save_pretrained(config_dir / "text_encoder")
        first.pipe.scheduler.save_config(config_dir / "scheduler")
        first.pipe.tokenizer.save_pretrained(config_dir / "tokenizer")
        del first, second
        app = App(parse_args(["--data-dir", str(data_dir)]))
        try:
            bench_generation(app, args.size, args.steps, args.repeats)
            bench_loading(
                app, ckpt_dir / "first.safetensors", ckpt_dir / "second.safetensors", config_dir, args.repeats
            )
        finally:
            app.jobs.stop()
        bench_launch(data_dir)


if __name__ == "__main__":
    main()
