"""--data-dir on a fresh folder (issue 20, item 11): the server started from the command line creates the
data dir's folders and still offers what the install ships (the demo models, extensions/), after the data
dir's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from tests.conftest import make_app, make_data_dir
from tests.reliability.test_queue_restart import server
from webui.core.cmd_args import REPO_ROOT

FOLDERS = ("models/Stable-diffusion", "models/Lora", "models/VAE", "models/embeddings", "models/ControlNet")


def test_fresh_data_dir_gets_its_folders_and_keeps_the_shipped_models(tmp_path: Path, tiny_sd1_file: Path):
    data = tmp_path / "fresh"
    with server(data, tmp_path / "server.log") as (_, url):
        for folder in (*FOLDERS, "outputs"):
            assert (data / folder).is_dir(), folder
        models = requests.get(f"{url}/sdapi/v1/sd-models", timeout=60).json()
        assert [m["model_name"] for m in models] == ["demo-shapes"]
        assert [lora["name"] for lora in requests.get(f"{url}/sdapi/v1/loras", timeout=60).json()] == [
            "demo-pastel"
        ]
        controlnets = requests.get(f"{url}/controlnet/model_list", timeout=60).json()["model_list"]
        assert [title.split(" [")[0] for title in controlnets] == ["demo-shapes-canny"]
        extensions = {e["name"]: e for e in requests.get(f"{url}/sdapi/v1/extensions", timeout=60).json()}
        assert extensions["example-watermark"]["enabled"] and "xyz_grid" in extensions
        response = requests.post(
            f"{url}/sdapi/v1/txt2img",
            json={"prompt": "a red circle", "steps": 2, "width": 64, "height": 64},
            timeout=300,
        )
        assert response.status_code == 200, response.text
        assert "Model: demo-shapes" in response.json()["info"]


def test_the_data_dirs_own_files_come_first_and_win_over_shipped_ones(tmp_path: Path, tiny_sd1_file: Path):
    data = make_data_dir(tmp_path / "data", tiny_sd1_file)
    (data / "models" / "Lora").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "models" / "Lora" / "demo-pastel.safetensors", data / "models" / "Lora")
    app = make_app(data)
    try:
        assert [(e.name, e.path.parent) for e in app.registry.entries] == [
            ("tiny-sd1.safetensors", data / "models" / "Stable-diffusion"),
            ("demo-shapes.safetensors", REPO_ROOT / "models" / "Stable-diffusion"),
        ]
        assert [(e.name, e.path.parent) for e in app.manager.loras.entries] == [
            ("demo-pastel", data / "models" / "Lora")
        ]
    finally:
        app.jobs.stop()
