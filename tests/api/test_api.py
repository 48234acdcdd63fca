"""The A1111-compatible API on a real server at 127.0.0.1, driven by a real HTTP client."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
import requests
from PIL import Image

from webui.core.cmd_args import REPO_ROOT
from webui.services.outputs import read_infotext

SMALL = {"width": 64, "height": 64, "steps": 3, "cfg_scale": 5}


def txt2img(base_url: str, **payload) -> requests.Response:
    return requests.post(f"{base_url}/sdapi/v1/txt2img", json={**SMALL, **payload}, timeout=120)


def decode(image_b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(image_b64)))


def test_txt2img_returns_images_with_embedded_infotext(running_app):
    app, url = running_app
    response = txt2img(
        url,
        prompt="a blue square",
        negative_prompt="red",
        seed=42,
        batch_size=2,
        sampler_name="Euler a",
        width=64,
        height=80,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    assert info["all_seeds"] == [42, 43] and info["seed"] == 42
    assert len(body["images"]) == 2
    for b64, infotext, seed in zip(body["images"], info["infotexts"], (42, 43)):
        image = decode(b64)
        assert image.size == (64, 80)
        assert image.info["parameters"] == infotext
        assert infotext.startswith("a blue square\nNegative prompt: red\nSteps: 3, Sampler: Euler a, ")
        assert f"Seed: {seed}," in infotext and "Size: 64x80" in infotext
        entry = app.registry.entries[0]
        assert f"Model hash: {app.registry.short_hash(entry)}, Model: {entry.model_name}" in infotext
    assert body["parameters"]["prompt"] == "a blue square"
    # The API does not save unless asked (A1111's default).
    assert not list(app.paths.outputs_dir.glob("txt2img-images/*/*.png"))


def test_same_parameters_give_identical_pixels_and_seeds_differ(running_app):
    _, url = running_app
    first = txt2img(url, prompt="x", seed=7, sampler_name="DPM++ 2M", scheduler="Karras").json()["images"][0]
    again = txt2img(url, prompt="x", seed=7, sampler_name="DPM++ 2M", scheduler="Karras").json()["images"][0]
    other = txt2img(url, prompt="x", seed=8, sampler_name="DPM++ 2M", scheduler="Karras").json()["images"][0]
    assert decode(first).tobytes() == decode(again).tobytes()
    assert decode(first).tobytes() != decode(other).tobytes()


def test_random_seed_is_reported_and_reproduces(running_app):
    _, url = running_app
    body = txt2img(url, prompt="y", seed=-1).json()
    seed = json.loads(body["info"])["seed"]
    assert seed >= 0
    again = txt2img(url, prompt="y", seed=seed).json()
    assert decode(body["images"][0]).tobytes() == decode(again["images"][0]).tobytes()


def test_combined_sampler_name_is_split_as_a1111_does(running_app):
    _, url = running_app
    info = json.loads(txt2img(url, prompt="z", seed=1, sampler_name="DPM++ 2M Karras").json()["info"])
    assert "Sampler: DPM++ 2M, Schedule type: Karras," in info["infotexts"][0]


def test_cfg_rescale_changes_the_image_and_is_recorded(running_app):
    _, url = running_app
    plain = txt2img(url, prompt="x", seed=3, cfg_scale=30).json()
    body = txt2img(url, prompt="x", seed=3, cfg_scale=30, cfg_rescale=0.7).json()
    assert body["parameters"]["cfg_rescale"] == 0.7
    assert "CFG Rescale: 0.7," in json.loads(body["info"])["infotexts"][0]
    assert "CFG Rescale" not in json.loads(plain["info"])["infotexts"][0]
    assert decode(body["images"][0]).tobytes() != decode(plain["images"][0]).tobytes()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"steps": "many"}, "steps"),
        ({"width": 65}, "multiple of 8"),
        ({"sampler_name": "Euler z"}, "Euler a"),  # the error lists the valid names
        ({"restore_faces": True}, "restore_faces"),
        ({"override_settings": {"no_such_option": 1}}, "no_such_option"),
        ({"cfg_rescale": 1.5}, "cfg_rescale"),
    ],
)
def test_invalid_payload_is_422_with_reason(running_app, payload, reason):
    _, url = running_app
    response = txt2img(url, prompt="bad", **payload)
    assert response.status_code == 422
    assert reason in response.json()["detail"]


def test_save_images_writes_png_with_same_infotext(running_app):
    app, url = running_app
    body = txt2img(url, prompt="saved", seed=5, save_images=True).json()
    info = json.loads(body["info"])
    saved = Image.open(info["images_saved"][0])
    assert saved.info["parameters"] == info["infotexts"][0]
    assert saved.filename.endswith("-5.png")


def test_model_listing_options_and_lists(running_app):
    app, url = running_app
    models = requests.get(f"{url}/sdapi/v1/sd-models", timeout=10).json()
    entry = app.registry.entries[0]
    sha = app.registry.hashes.sha256(entry.path)
    assert models[0] == {
        "title": f"tiny-sd1.safetensors [{sha[:10]}]",
        "model_name": "tiny-sd1",
        "hash": sha[:10],
        "sha256": sha,
        "filename": str(entry.path),
        "config": None,
    }
    assert [m["model_name"] for m in models[1:]] == ["demo-shapes"]  # the install's, after the data dir's
    options = requests.get(f"{url}/sdapi/v1/options", timeout=10).json()
    assert options["sd_model_checkpoint"] == models[0]["title"]
    assert options["samples_format"] == "png"
    names = [s["name"] for s in requests.get(f"{url}/sdapi/v1/samplers", timeout=10).json()]
    assert {"Euler a", "Euler", "DPM++ 2M", "DDIM", "UniPC", "LMS", "Heun"} <= set(names)
    schedulers = [s["label"] for s in requests.get(f"{url}/sdapi/v1/schedulers", timeout=10).json()]
    assert {"Automatic", "Karras", "Exponential"} <= set(schedulers)


def test_options_validation_and_unknown_checkpoint(running_app):
    app, url = running_app
    bad = requests.post(f"{url}/sdapi/v1/options", json={"samples_format": "tiff"}, timeout=10)
    assert bad.status_code == 422 and "tiff" in bad.json()["detail"]
    missing = requests.post(
        f"{url}/sdapi/v1/options", json={"sd_model_checkpoint": "nope.safetensors"}, timeout=10
    )
    assert missing.status_code == 404 and "tiny-sd1.safetensors" in missing.json()["detail"]
    assert txt2img(url, prompt="still serving").status_code == 200


def test_corrupt_checkpoint_is_a_clear_error_and_previous_model_stays(running_app):
    app, url = running_app
    before = app.current_checkpoint_title()
    (app.paths.ckpt_dir / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    try:
        requests.post(f"{url}/sdapi/v1/refresh-checkpoints", timeout=10).raise_for_status()
        response = requests.post(
            f"{url}/sdapi/v1/options", json={"sd_model_checkpoint": "broken.safetensors"}, timeout=30
        )
        assert response.status_code == 400
        assert "broken.safetensors" in response.json()["detail"]
        assert app.current_checkpoint_title() == before
        assert requests.get(f"{url}/sdapi/v1/options", timeout=10).json()["sd_model_checkpoint"] == before
        assert txt2img(url, prompt="after failure").status_code == 200
    finally:
        (app.paths.ckpt_dir / "broken.safetensors").unlink()
        app.refresh_checkpoints()


def test_progress_and_interrupt(running_app):
    _, url = running_app
    idle = requests.get(f"{url}/sdapi/v1/progress", timeout=10).json()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0
    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(r=txt2img(url, prompt="long", seed=3, steps=150, n_iter=3))
    )
    worker.start()
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = requests.get(f"{url}/sdapi/v1/progress", timeout=10).json()
        if view["state"]["sampling_step"] >= 2:
            seen.append(view)
            break
        time.sleep(0.05)
    assert seen and 0 < seen[0]["progress"] < 1 and seen[0]["state"]["job_count"] == 3
    requests.post(f"{url}/sdapi/v1/interrupt", timeout=10).raise_for_status()
    worker.join(60)
    body = outcome["r"].json()
    info = json.loads(body["info"])
    assert info["interrupted"] is True
    assert len(body["images"]) == 1  # stopped in the first of three batches, which still returns its image


def test_options_change_cache_size_and_persist(running_app, tmp_path):
    app, url = running_app
    try:
        response = requests.post(
            f"{url}/sdapi/v1/options", json={"sd_checkpoints_limit": 2, "samples_format": "webp"}, timeout=10
        )
        assert response.status_code == 200, response.text
        assert app.manager.device_slots == 2
        saved = json.loads(app.paths.config_file.read_text())
        assert saved["sd_checkpoints_limit"] == 2 and saved["samples_format"] == "webp"
        info = json.loads(txt2img(url, prompt="webp", seed=9, save_images=True).json()["info"])
        assert info["images_saved"][0].endswith("-9.webp")
        assert read_infotext(Image.open(info["images_saved"][0])) == info["infotexts"][0]  # EXIF UserComment
    finally:
        requests.post(
            f"{url}/sdapi/v1/options", json={"sd_checkpoints_limit": 1, "samples_format": "png"}, timeout=10
        )


def test_vae_and_lora_lists_follow_their_folders(running_app):
    app, url = running_app
    assert requests.get(f"{url}/sdapi/v1/sd-vae", timeout=10).json() == []
    shipped = [("demo-pastel", str(REPO_ROOT / "models" / "Lora" / "demo-pastel.safetensors"))]
    loras = requests.get(f"{url}/sdapi/v1/loras", timeout=10).json()
    assert [(item["name"], item["path"]) for item in loras] == shipped  # the install's demo LoRA
    lora_dir = app.paths.lora_dir
    lora_dir.mkdir(parents=True, exist_ok=True)
    (lora_dir / "style.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    # A VAE beside the checkpoint belongs to it: it is not listed as a checkpoint.
    sidecar = app.paths.ckpt_dir / "tiny-sd1.vae.safetensors"
    sidecar.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    try:
        requests.post(f"{url}/sdapi/v1/refresh-loras", timeout=10).raise_for_status()
        requests.post(f"{url}/sdapi/v1/refresh-checkpoints", timeout=10).raise_for_status()
        loras = requests.get(f"{url}/sdapi/v1/loras", timeout=10).json()
        assert [(item["name"], item["path"]) for item in loras] == [
            *shipped,
            ("style", str(lora_dir / "style.safetensors")),
        ]
        titles = [m["title"] for m in requests.get(f"{url}/sdapi/v1/sd-models", timeout=10).json()]
        assert not any("vae" in title for title in titles)
        missing = txt2img(url, prompt="a cat <lora:nope:1>")
        assert missing.status_code == 422 and "nope" in missing.json()["detail"]
    finally:
        (lora_dir / "style.safetensors").unlink()
        sidecar.unlink()
        app.manager.loras.refresh()
        app.refresh_checkpoints()
