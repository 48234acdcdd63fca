"""Cold load of a full-size single-file checkpoint: ours against diffusers' `from_single_file`.

    python bench/bench_load.py [--family sd1|sdxl] [--repeats 3] [--dtype float32|float16] [--hash]

Builds the full-size random-weight file once (tools/random_models.py; SD 1.5: 2.13 GB fp16, SDXL: ~7 GB),
then loads it in fresh processes, ours and diffusers' interleaved, and prints medians: load time, peak
resident memory (ru_maxrss of the child), the loaded model's own size and the ratios the goals are
stated in (ours/diffusers time <= 0.7; peak RSS / model size <= 1.1). The peak includes the process's
libraries (torch, diffusers, transformers: "base" is the RSS after importing them), so the figure
"peak - base" shows what loading itself costs.

`--hash`: also time our load of a file whose sha256 is not cached yet (the web UI's first load: hashing
overlaps loading), against the load alone (goal <= 1.1x).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


def _child(kind: str, path: Path, dtype_name: str) -> None:
    """One load in this (fresh) process; prints a JSON line."""
    sys.path.insert(0, str(ROOT))
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from webui.core.hashing import HashCache
    from webui.engine.checkpoints.components import CONFIGS
    from webui.engine.checkpoints.loader import load_checkpoint
    from webui.engine.checkpoints.manager import ModelManager
    from webui.engine.checkpoints.registry import CheckpointRegistry
    from webui.engine.devices import DeviceChoice

    dtype = getattr(torch, dtype_name)
    base = _rss_now()
    start, cpu = time.perf_counter(), time.process_time()
    if kind == "ours":
        pipe = load_checkpoint(path, torch.device("cpu"), dtype).pipe
    elif kind == "ours+hash":  # the web UI's first load of a file: through the manager, hash not cached
        manager = ModelManager(
            CheckpointRegistry(path.parent, HashCache(Path(tempfile.mkdtemp()) / "hashes.json")),
            DeviceChoice(torch.device("cpu"), dtype),
        )
        loaded = manager.get(path.stem)
        manager.short_hash(loaded)  # what the first infotext needs
        pipe = loaded.pipe
    else:
        sdxl = "sdxl" in path.name
        cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
        config = CONFIGS / ("sdxl" if sdxl else "sd1")
        pipe = cls.from_single_file(str(path), config=str(config), local_files_only=True, torch_dtype=dtype)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu  # all threads' CPU
    size = sum(
        t.numel() * t.element_size()
        for module in pipe.components.values()
        if isinstance(module, torch.nn.Module)
        for t in [*module.parameters(), *module.buffers()]
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak": peak, "base": base, "model": size}))


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _run(kind: str, path: Path, dtype: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--file", str(path), "--dtype", dtype],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--family", choices=["sd1", "sdxl"], default="sd1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--hash", action="store_true", help="also time the first load with hashing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.file, args.dtype)
        return
    sys.path.insert(0, str(ROOT))
    from tools.random_models import cached_full_size

    path = cached_full_size(args.family)
    print(f"{path.name}: {path.stat().st_size / GIB:.2f} GiB on disk; loading as {args.dtype} on the CPU")
    kinds = ["ours", "diffusers"] + (["ours+hash"] if args.hash else [])
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for i in range(args.repeats):
        for kind in kinds:
            runs[kind].append(_run(kind, path, args.dtype))
            r = runs[kind][-1]
            print(
                f"  [{i + 1}] {kind:10s} {r['seconds']:6.2f} s ({r['cpu']:5.1f} CPU s)  "
                f"peak {r['peak'] / GIB:5.2f} GiB"
            )
    med = {kind: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for kind, rs in runs.items()}
    for kind, m in med.items():
        print(
            f"{kind:10s} median {m['seconds']:6.2f} s  peak RSS {m['peak'] / GIB:5.2f} GiB "
            f"(base {m['base'] / GIB:.2f}, peak - base {(m['peak'] - m['base']) / GIB:.2f})  "
            f"model {m['model'] / GIB:.2f} GiB  peak/model {m['peak'] / m['model']:.2f}x  "
            f"(peak-base)/model {(m['peak'] - m['base']) / m['model']:.2f}x"
        )
    ours, theirs = med["ours"], med["diffusers"]
    print(f"time ours/from_single_file: {ours['seconds'] / theirs['seconds']:.2f}x (goal <= 0.7x)")
    # CPU seconds: what a shared machine's load disturbs least
    print(
        f"CPU ours/from_single_file: {ours['cpu'] / theirs['cpu']:.2f}x "
        f"({ours['cpu']:.1f} vs {theirs['cpu']:.1f} s)"
    )
    print(f"peak RSS ours/from_single_file: {ours['peak'] / theirs['peak']:.2f}x")
    if args.hash:
        ratio = med["ours+hash"]["seconds"] / ours["seconds"]
        print(f"first load with hashing / load alone: {ratio:.2f}x (goal <= 1.1x)")


if __name__ == "__main__":
    main()
