"""Issue 21, evidence: 50 concurrent txt2img requests on the demo model give 50 images, none lost or
duplicated (each seed once, in the answers and on disk), while /sdapi/v1/progress keeps answering at once
(median under 0.1 s, every call under 1 s). The measured figures are printed (run with -s) and recorded in
docs/security.md."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import make_data_dir
from tests.security.servers import launched
from webui.core import infotext
from webui.services.outputs import read_infotext

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[2] / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
JOBS = 50


def test_50_concurrent_jobs_give_50_images_while_progress_answers_at_once(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", DEMO)
    with launched(data, tmp_path / "server.log") as url:
        latencies: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                start = time.perf_counter()
                assert requests.get(f"{url}/sdapi/v1/progress", timeout=30).status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.1)

        body = {"prompt": "a red circle", "steps": 4, "width": 64, "height": 64, "save_images": True}
        start = time.perf_counter()
        poller = threading.Thread(target=poll)
        poller.start()
        try:
            with ThreadPoolExecutor(JOBS) as pool:
                answers = list(
                    pool.map(
                        lambda seed: requests.post(
                            f"{url}/sdapi/v1/txt2img", json={**body, "seed": seed}, timeout=900
                        ),
                        range(JOBS),
                    )
                )
        finally:
            done.set()
            poller.join(60)
        elapsed = time.perf_counter() - start
        assert [answer.status_code for answer in answers] == [200] * JOBS
        assert sorted(answer.json()["parameters"]["seed"] for answer in answers) == list(range(JOBS))
        assert all(len(answer.json()["images"]) == 1 for answer in answers)
        files = sorted((data / "outputs").glob("txt2img-images/*/*.png"))
        seeds_on_disk = sorted(int(infotext.parse(read_infotext(Image.open(f)))["Seed"]) for f in files)
        assert seeds_on_disk == list(range(JOBS))  # each image saved once
        median = sorted(latencies)[len(latencies) // 2]
        print(
            f"\n{JOBS} jobs in {elapsed:.1f} s; progress: {len(latencies)} calls, "
            f"max {max(latencies) * 1000:.0f} ms, median {median * 1000:.0f} ms"
        )
        # Typically a few ms, ~0.5 s at most on an idle machine (the burst of 50 bodies being parsed); 1 s
        # leaves room for the suite's other test process sharing the 2 cores (0.7 s seen), and still fails the
        # 1.7 s the old 40-thread pool took under the same burst.
        assert median < 0.1 and max(latencies) < 1.0, sorted(latencies)[-5:]
