"""Memory when switching between two cached full-size SD 1.5-shaped checkpoints.

    python bench/bench_switch.py [--switches 4]

Two names for the cached random-weight SD 1.5 file (tools/random_models.py; hard links, so no second
2 GB on disk, but two separate checkpoints to the web UI) are loaded in turn through a ModelManager that
keeps both (the "Checkpoints to cache in RAM" setting at 1), as float32 on the CPU, A, B, A, B, …
Printed after each switch: resident memory (VmRSS) and the peak so far (ru_maxrss), less the RSS after
importing the libraries, as a ratio to one loaded model's own size. Goal: <= 2.1x one model (the two
models themselves are 2x: no leak, no duplicate copy). Run it as its own process: the peak is the
process's.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = 2.1
GIB = 1024**3


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def two_names(source: Path, folder: Path) -> None:
    for name in ("a", "b"):
        target = folder / f"{name}.safetensors"
        try:
            os.link(source, target)
        except OSError:  # another file system: a symlink is still a separate checkpoint path
            target.symlink_to(source)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--switches", type=int, default=4)
    args = parser.parse_args()

    import torch

    from tools.random_models import cached_full_size
    from webui.core.hashing import HashCache
    from webui.engine.checkpoints.manager import ModelManager
    from webui.engine.checkpoints.registry import CheckpointRegistry
    from webui.engine.devices import DeviceChoice

    source = cached_full_size("sd1")
    base = rss()
    with tempfile.TemporaryDirectory() as work:
        models = Path(work) / "models"
        models.mkdir()
        two_names(source, models)
        registry = CheckpointRegistry(models, HashCache(Path(work) / "cache.json"))
        manager = ModelManager(registry, DeviceChoice(torch.device("cpu"), torch.float32), ram_cache=1)
        one = 0
        worst = 0.0
        for switch in range(args.switches):
            name = "ab"[switch % 2]
            start = time.perf_counter()
            loaded = manager.get(name)
            seconds = time.perf_counter() - start
            one = one or loaded.weight_bytes
            now, top = rss() - base, peak() - base
            worst = max(worst, top / one)
            kept = ", ".join(path.stem for path in manager.loaded_paths())
            print(
                f"  {switch + 1}. {name}: {seconds:6.2f} s, RSS {now / GIB:.2f} GiB "
                f"({now / one:.2f}x one model), peak {top / GIB:.2f} GiB ({top / one:.2f}x); loaded: {kept}"
            )
    verdict = "ok" if worst <= GOAL else "MISSED"
    print(
        f"one model {one / GIB:.2f} GiB; libraries {base / GIB:.2f} GiB (not counted); "
        f"peak while switching {worst:.2f}x one model (goal <= {GOAL}x, {verdict})"
    )


if __name__ == "__main__":
    main()
