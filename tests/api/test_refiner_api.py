"""Refiner and hires checkpoint through /sdapi/v1/txt2img on a real server over tiny checkpoints (an SDXL
base, a tiny SDXL refiner in the real LDM layout, two SD1), and the tabs' "Refiner" accordion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
import requests

from tests.conftest import make_app, make_data_dir
from tools.tiny_models import save_tiny_checkpoint
from webui.core.params import Img2Img, Txt2Img
from webui.ui import img2img, refiner, txt2img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"width": 64, "height": 64, "steps": 5, "cfg_scale": 5, "seed": 3, "sampler_name": "Euler"}


@pytest.fixture(scope="module")
def refiner_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    from webui.app import serve_in_thread

    folder = tmp_path_factory.mktemp("refiner-files")
    files: list[Path] = [
        save_tiny_checkpoint(folder / "tiny-xl.safetensors", "sdxl"),
        save_tiny_checkpoint(folder / "tiny-refiner.safetensors", "sdxl-refiner", seed=2),
        save_tiny_checkpoint(folder / "tiny-a.safetensors", "sd1"),
        save_tiny_checkpoint(folder / "tiny-b.safetensors", "sd1", seed=9),
    ]
    app = make_app(make_data_dir(tmp_path_factory.mktemp("data"), *files), "--api")
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def infotext_of(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return json.loads(response.json()["info"])["infotexts"][0]


def test_sdxl_base_with_the_refiner_through_the_api(refiner_app):
    _, url = refiner_app
    base = {**SMALL, "prompt": "a cat", "override_settings": {"sd_model_checkpoint": "tiny-xl"}}
    plain = requests.post(f"{url}/sdapi/v1/txt2img", json=base, timeout=300)
    refined = requests.post(
        f"{url}/sdapi/v1/txt2img", json={**base, "refiner_checkpoint": "tiny-refiner"}, timeout=300
    )
    text = infotext_of(refined)
    assert "Model: tiny-xl" in text and "Refiner: tiny-refiner [" in text and "Refiner switch at: 0.8" in text
    assert "Refiner" not in infotext_of(plain)
    assert plain.json()["images"][0] != refined.json()["images"][0]
    # switch at 1: the switch never comes, the plain image and no key
    never = requests.post(
        f"{url}/sdapi/v1/txt2img",
        json={**base, "refiner_checkpoint": "tiny-refiner", "refiner_switch_at": 1.0},
        timeout=300,
    )
    assert never.json()["images"][0] == plain.json()["images"][0] and "Refiner" not in infotext_of(never)


def test_an_unknown_refiner_is_a_422_naming_it(refiner_app):
    _, url = refiner_app
    response = requests.post(
        f"{url}/sdapi/v1/txt2img", json={**SMALL, "refiner_checkpoint": "no-such-refiner"}, timeout=60
    )
    assert response.status_code == 422 and "no-such-refiner" in response.text


def test_a_hires_checkpoint_other_than_the_first_runs_the_second_pass(refiner_app):
    _, url = refiner_app
    payload = {
        **SMALL, "prompt": "a cat", "enable_hr": True, "hr_scale": 2, "hr_second_pass_steps": 2,
        "denoising_strength": 0.5, "override_settings": {"sd_model_checkpoint": "tiny-a"},
    }  # fmt: skip
    same = requests.post(f"{url}/sdapi/v1/txt2img", json=payload, timeout=300)
    other = requests.post(
        f"{url}/sdapi/v1/txt2img", json={**payload, "hr_checkpoint_name": "tiny-b"}, timeout=300
    )
    text = infotext_of(other)
    assert "Model: tiny-a" in text and "Hires checkpoint: tiny-b [" in text
    assert "Hires checkpoint" not in infotext_of(same)
    assert same.json()["images"][0] != other.json()["images"][0]


def test_both_tabs_have_the_refiner_accordion(refiner_app):
    app, _ = refiner_app
    for build, params_type in ((txt2img.build_tab, Txt2Img), (img2img.build_tab, Img2Img)):
        with gr.Blocks():
            tab = build(app.services)
        section = next(s for s in tab.sections if isinstance(s, refiner.RefinerSection))
        checkpoint, switch_at = (tab.controls[name] for name in refiner.FIELDS)
        assert checkpoint.label == "Checkpoint" and switch_at.label == "Switch at" and switch_at.value == 0.8
        titles = [label for label, _ in checkpoint.choices]
        assert titles[0] == "None" and any(title.startswith("tiny-refiner.safetensors") for title in titles)
        chosen = section.apply(params_type(), ["tiny-refiner.safetensors", 0.6, True])
        assert (chosen.refiner_checkpoint, chosen.refiner_switch_at) == ("tiny-refiner.safetensors", 0.6)
        assert section.apply(params_type(), ["None", 0.8, True]).refiner_checkpoint is None
        # the accordion closed (its header checkbox off): no refiner, whatever the dropdown says
        assert (
            section.apply(params_type(), ["tiny-refiner.safetensors", 0.6, False]).refiner_checkpoint is None
        )


def test_a_refiner_that_is_the_checkpoint_itself_says_it_was_skipped(refiner_app, caplog):
    """A1111 skips such a refiner without a word; we keep its result (no switch, no "Refiner" keys) and
    say so: one INFO line in the log and the job's warnings."""
    _, url = refiner_app
    base = {**SMALL, "prompt": "a cat", "override_settings": {"sd_model_checkpoint": "tiny-a"}}
    plain = requests.post(f"{url}/sdapi/v1/txt2img", json=base, timeout=300)
    caplog.clear()
    with caplog.at_level("INFO", logger="webui.engine.sampling.refiner"):
        same = requests.post(
            f"{url}/sdapi/v1/txt2img", json={**base, "refiner_checkpoint": "tiny-a"}, timeout=300
        )
    info = json.loads(same.json()["info"])
    assert info["warnings"] == ["Refiner skipped: same checkpoint as the model"]
    assert "Refiner" not in infotext_of(same) and same.json()["images"][0] == plain.json()["images"][0]
    skipped = [r for r in caplog.records if "Refiner skipped" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in skipped] == [
        ("INFO", "Refiner skipped: same checkpoint as the model (tiny-a)")
    ]
    assert not any(r.exc_info for r in skipped)
    assert "warnings" in json.loads(plain.json()["info"]) and not json.loads(plain.json()["info"])["warnings"]
