"""Start-up: time from `python launch.py` to the first 200 on `/` and to a first usable generation.

    python bench/bench_startup.py [--repeats 3]

Each run starts a fresh `launch.py --api` on a free port with a temporary data folder and the bundled
demo model as the checkpoint, polls `/` until it answers 200, then posts a 1-step 64x64 txt2img to
/sdapi/v1/txt2img and waits for its answer. "Warm" means the files are in the page cache: the first
run is a warm-up and is not counted. Goal: the page in <= 6 s on this machine.
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


def one_start() -> tuple[float, float]:
    """(seconds to the page, seconds to the first generation's answer) for one fresh process."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        command = [sys.executable, "launch.py", "--api", "--port", str(port), "--data-dir", data]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--ckpt", str(DEMO)],
            cwd=ROOT,
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
            body = json.dumps({"prompt": "a red circle", "steps": 1, "width": 64, "height": 64}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/sdapi/v1/txt2img",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
            return page, time.perf_counter() - start
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    one_start()  # warm-up: the files into the page cache
    pages, generations = [], []
    for i in range(args.repeats):
        page, generation = one_start()
        pages.append(page)
        generations.append(generation)
        print(f"  [{i + 1}] page {page:.2f} s, first generation {generation:.2f} s")
    page, generation = statistics.median(pages), statistics.median(generations)
    verdict = "ok" if page <= GOAL_PAGE_SECONDS else "MISSED"
    print(
        f"warm start: page {page:.2f} s (goal <= {GOAL_PAGE_SECONDS:g} s, {verdict}), "
        f"first generation {generation:.2f} s (medians of {args.repeats})"
    )


if __name__ == "__main__":
    main()
