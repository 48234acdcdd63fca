"""Start-up: time from `python launch.py` to the first 200 on `/`, to the model loaded, and to a first
generation's answer.

    python bench/bench_startup.py [--repeats 3]

Each run starts a fresh `launch.py --api` on a free port with a temporary data folder and the bundled
demo model as the checkpoint, polls `/` until it answers 200 (also noting the CPU seconds the process
had used by then: less sensitive than the wall clock to others' load on a shared machine), polls
/sdapi/v1/options until the demo model is the loaded checkpoint, then posts a 1-step 64x64 txt2img and
waits for its answer. "Warm" means the files are in the page cache: the first run is a warm-up and is
not counted. Goal: the page in <= 6 s on this machine; the ratio to it is printed. With `--baseline DIR`
(e.g. `git archive` of an older commit) the two checkouts start alternately and their ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
GOAL_PAGE_SECONDS = 6.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loaded_checkpoint(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sdapi/v1/options", timeout=5) as response:
            return str(json.loads(response.read()).get("sd_model_checkpoint") or "")
    except (urllib.error.URLError, OSError, ValueError):
        return ""


@dataclass(frozen=True)
class Start:
    page: float  # seconds from the launch to the first 200 on /
    page_cpu: float  # CPU seconds the process had used by then
    model: float  # seconds to the demo model loaded
    generation: float  # seconds to the first txt2img's answer


def one_start(root: Path = ROOT) -> Start:
    """The times of one fresh process of the checkout at `root` (this one, or another to compare)."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        # this Python's environment, wherever the checkout is (no venv check: it is the one running)
        command = [
            sys.executable,
            "launch.py",
            "--skip-install",
            "--api",
            "--port",
            str(port),
            "--data-dir",
            data,
        ]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--ckpt", str(DEMO)],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while _get(f"http://127.0.0.1:{port}/") != 200:
                if process.poll() is not None or time.perf_counter() - start > 300:
                    raise RuntimeError("the web UI did not start")
                time.sleep(0.05)
            page = time.perf_counter() - start
            page_cpu = _cpu_seconds(process.pid)
            while DEMO.stem not in _loaded_checkpoint(port):
                if process.poll() is not None or time.perf_counter() - start > 300:
                    raise RuntimeError("the demo model did not load")
                time.sleep(0.05)
            model = time.perf_counter() - start
            body = json.dumps({"prompt": "a red circle", "steps": 1, "width": 64, "height": 64}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/sdapi/v1/txt2img",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
            return Start(page, page_cpu, model, time.perf_counter() - start)
        finally:
            process.terminate()
            process.wait(timeout=30)


def median(starts: list[Start], name: str) -> float:
    return statistics.median(getattr(run, name) for run in starts)


def summary(label: str, starts: list[Start]) -> str:
    page = median(starts, "page")
    verdict = "ok" if page <= GOAL_PAGE_SECONDS else "MISSED"
    return (
        f"{label}, medians of {len(starts)}: page {page:.2f} s = {page / GOAL_PAGE_SECONDS:.2f}x the "
        f"{GOAL_PAGE_SECONDS:g} s goal ({verdict}; {median(starts, 'page_cpu'):.1f} CPU s), model loaded "
        f"{median(starts, 'model'):.2f} s, first generation {median(starts, 'generation'):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to start (default: this one)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. an older commit) started alternately with --root, for ratios that a "
        "shared machine's load disturbs alike",
    )
    args = parser.parse_args()
    roots = {"warm start": args.root, **({"baseline": args.baseline} if args.baseline else {})}
    for root in roots.values():
        one_start(root)  # warm-up: the files into the page cache
    starts: dict[str, list[Start]] = {label: [] for label in roots}
    for i in range(args.repeats):
        for label, root in roots.items():
            run = one_start(root)
            starts[label].append(run)
            print(
                f"  [{i + 1}] {label}: page {run.page:.2f} s ({run.page_cpu:.1f} CPU s), model loaded "
                f"{run.model:.2f} s, first generation {run.generation:.2f} s "
                f"(load average {os.getloadavg()[0]:.1f})"
            )
    for label, runs in starts.items():
        print(summary(label, runs))
    if args.baseline:
        ours, base = starts["warm start"], starts["baseline"]
        print(
            f"against the baseline: page {median(ours, 'page') / median(base, 'page'):.2f}x, "
            f"CPU to the page {median(ours, 'page_cpu') / median(base, 'page_cpu'):.2f}x"
        )


if __name__ == "__main__":
    main()
