"""Start-up (issue 24): the page is served before the model stack is imported. diffusers (with the
transformers, accelerate, peft and scipy it pulls in), controlnet-aux and spandrel cost seconds of CPU at
import; they are imported by the first model load, ControlNet preprocessor or upscaler, not by the page.

Checked in a fresh process, as `webui.app.serve` starts (App, the start-up checkpoint's header read, the
UI and the API mounted), at the moment the page answers its first request: a module-level import added
anywhere on that path shows up here by name, whatever the machine's speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
# Imported on first use only; each is a top-level package name.
LAZY = ("diffusers", "transformers", "accelerate", "peft", "scipy", "controlnet_aux", "spandrel", "torchsde")

# Builds and serves the app as webui.app.serve does, minus the background load it queues once
# listening (that load is what imports diffusers), then reports sys.modules after the first page.
SERVE_AND_REPORT = """
import json, sys, urllib.request
from webui.app import App, serve_in_thread
from webui.core.cmd_args import parse_args

args = parse_args(sys.argv[1:])
app = App(args)
app.models.prepare_background_load(args.ckpt)
server, thread = serve_in_thread(app)
port = server.servers[0].sockets[0].getsockname()[1]
with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as page:
    status = page.status
modules = sorted({name.split(".")[0] for name in sys.modules})
server.should_exit = True
thread.join(10)
app.jobs.stop(timeout=10)
print(json.dumps({"status": status, "modules": modules}))
"""


def test_the_page_is_served_before_the_model_stack_is_imported(tmp_path: Path) -> None:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    flags = ["--skip-install", "--api", "--data-dir", str(tmp_path), "--ckpt", str(DEMO)]
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_REPORT, *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a busy 2-core machine; an idle one takes seconds
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 200
    modules = set(report["modules"])
    assert {"gradio", "webui"} <= modules  # the page was really built in that process
    assert sorted(modules & set(LAZY)) == []
