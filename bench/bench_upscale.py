"""Tiled vs untiled model upscaling: time and peak memory for a 4x ESRGAN (RRDBNet) on a 512² input.

    python bench/bench_upscale.py [--size 512] [--filters 16] [--blocks 2] [--tile 192] [--overlap 8]

The model is ESRGAN's RRDBNet with random weights and, by default, fewer channels and blocks than the
published 4x models (64 filters, 23 blocks), so a CPU finishes in seconds; its memory per pixel grows the
same way (activations ∝ filters × pixels). Each variant runs in a fresh subprocess through the same path as
the app (UpscalerCatalog → tiled runner). Printed: seconds and peak memory above the loaded model (CPU:
peak resident set, ru_maxrss; CUDA: torch.cuda.max_memory_allocated, fp16 when --half), then tiled/untiled
ratios. Results are in docs/upscalers.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_kib() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024


def measure(folder: Path, size: int, tile: int, overlap: int, half: bool) -> dict[str, float]:
    """One upscale in this process: seconds and peak memory (MiB) above what was in use before it."""
    import numpy
    import torch
    from PIL import Image

    from webui.engine.upscaling.catalog import UpscalerCatalog
    from webui.engine.upscaling.runner import TileSettings

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    catalog = UpscalerCatalog([folder])
    catalog.load(catalog.get("bench_4x")).to(device)
    image = Image.fromarray(numpy.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=numpy.uint8))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_kib() * 1024
    start = time.perf_counter()
    result = catalog.upscale("bench_4x", image, 4, TileSettings(tile, overlap), device=device, half=half)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated()
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    assert result.size == (size * 4, size * 4)
    return {"seconds": seconds, "peak_mib": (peak - before) / 2**20}


def write_model(folder: Path, filters: int, blocks: int) -> None:
    import torch
    from safetensors.torch import save_file

    from webui.engine.upscaling.spandrel_import import load_spandrel

    load_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    model = ESRGAN(num_filters=filters, num_blocks=blocks, scale=4)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "bench_4x.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--overlap", type=int, default=8)
    parser.add_argument("--half", action="store_true", help="fp16 on CUDA (the app's default there)")
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "TILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = measure(Path(args.child[0]), args.size, int(args.child[1]), args.overlap, args.half)
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory() as folder:
        write_model(Path(folder), args.filters, args.blocks)
        results = {}
        for label, tile in (("untiled", 0), (f"tiled {args.tile}/{args.overlap}", args.tile)):
            command = [sys.executable, __file__, "--child", folder, str(tile), "--size", str(args.size)]
            command += ["--overlap", str(args.overlap)] + (["--half"] if args.half else [])
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[label] = json.loads(done.stdout.strip().splitlines()[-1])
            figures = results[label]
            print(f"{label:>16}: {figures['seconds']:7.2f} s, peak +{figures['peak_mib']:8.1f} MiB")
    untiled, tiled = results.values()
    time_ratio = tiled["seconds"] / untiled["seconds"]
    memory_ratio = tiled["peak_mib"] / untiled["peak_mib"]
    print(
        f"4x RRDBNet ({args.filters} filters, {args.blocks} blocks), {args.size}² input: "
        f"tiled/untiled time {time_ratio:.2f}x, peak memory {memory_ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
