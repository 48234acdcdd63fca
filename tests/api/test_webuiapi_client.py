"""The `webuiapi` client from PyPI (written for A1111, not by us) against a real server of ours."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import webuiapi
from PIL import Image, ImageDraw

from tests.conftest import make_app, make_data_dir
from webui.core import infotext
from webui.services.styles import PromptStyle

SMALL = {"steps": 3, "width": 64, "height": 64, "cfg_scale": 5}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[object, object]]:
    """(app, client): a server with the UI and API over two checkpoints, and a webuiapi client for it."""
    from webui.app import serve_in_thread

    second = tmp_path_factory.mktemp("second") / "second-model.safetensors"
    shutil.copy(tiny_sd1_file, second)
    app = make_app(make_data_dir(tmp_path_factory.mktemp("data"), tiny_sd1_file, second), "--api")
    app.load_initial_checkpoint()
    app.styles.save(PromptStyle("framed", "{prompt}, in a frame", "cropped"))
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, webuiapi.WebUIApi(host="127.0.0.1", port=port, sampler="Euler a", steps=3)
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def test_txt2img_with_styles(served):
    _, api = served
    result = api.txt2img(prompt="a red ball", negative_prompt="blue", seed=11, styles=["framed"], **SMALL)
    assert result.image.size == (64, 64)
    text = result.info["infotexts"][0]
    assert text.startswith(
        "a red ball, in a frame\nNegative prompt: blue, cropped\nSteps: 3, Sampler: Euler a, "
    )
    assert result.image.info["parameters"] == text
    assert (result.info["seed"], result.info["styles"]) == (11, ["framed"])


def test_png_info_reads_back_what_txt2img_wrote(served):
    _, api = served
    image = api.txt2img(prompt="a green cube", seed=12, **SMALL).image
    read = api.png_info(image)
    assert read.info == image.info["parameters"]
    assert read.json["parameters"]["Seed"] == "12" and read.json["parameters"]["Prompt"] == "a green cube"


def test_get_sd_models_lists_both_checkpoints(served):
    app, api = served
    models = api.get_sd_models()
    assert sorted(m["title"] for m in models) == sorted(app.registry.titles())
    # the data dir's two, then the install's shipped demo model
    assert {m["model_name"] for m in models} == {"tiny-sd1", "second-model", "demo-shapes"}
    assert all(Path(m["filename"]).is_file() for m in models)
    loaded = next(m for m in models if m["title"] == app.current_checkpoint_title())
    assert len(loaded["hash"]) == 10 and loaded["sha256"].startswith(loaded["hash"])  # others: once hashed


def test_util_set_model_switches_the_checkpoint(served):
    app, api = served
    first = api.util_get_current_model()
    try:
        api.util_set_model("second-model")
        assert api.util_get_current_model() == app.current_checkpoint_title()
        assert app.current_checkpoint_title().startswith("second-model.safetensors [")
        text = api.txt2img(prompt="x", seed=1, **SMALL).info["infotexts"][0]
        assert infotext.parse(text)["Model"] == "second-model"
    finally:
        api.util_set_model(first, find_closest=False)
    assert api.util_get_current_model() == first


def test_override_checkpoint_for_one_request(served):
    app, api = served
    before = app.current_checkpoint_title()
    result = api.txt2img(
        prompt="x", seed=2, override_settings={"sd_model_checkpoint": "second-model"}, **SMALL
    )
    assert infotext.parse(result.info["infotexts"][0])["Model"] == "second-model"
    assert (
        app.current_checkpoint_title() == before
    )  # put back afterwards (override_settings_restore_afterwards)


def test_img2img_and_inpaint(served):
    # Needs the /sdapi/v1/img2img route.
    _, api = served
    source = Image.new("RGB", (64, 64), (200, 40, 40))
    result = api.img2img(images=[source], prompt="a red square", denoising_strength=0.5, seed=3, **SMALL)
    assert result.image.size == (64, 64)
    assert "Denoising strength: 0.5" in result.info["infotexts"][0]
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((16, 16, 48, 48), fill=255)
    inpainted = api.img2img(
        images=[source],
        mask_image=mask,
        prompt="a hole",
        denoising_strength=1.0,
        seed=3,
        inpaint_full_res=False,
        **SMALL,
    )
    assert inpainted.image.size == (64, 64)
    assert inpainted.image.convert("RGB").getpixel((1, 1)) == (200, 40, 40)  # outside the mask: unchanged


def test_utility_routes(served):
    _, api = served
    assert [item["name"] for item in api.get_prompt_styles()] == ["framed"]
    assert [item["name"] for item in api.get_upscalers()] == ["None", "Lanczos", "Nearest"]
    assert api.get_cmd_flags()["api"] is True
    assert api.get_progress()["state"]["job_count"] == 0
    assert "loaded" in api.get_embeddings() and "ram" in api.get_memory()
    upscaled = api.extra_single_image(
        Image.new("RGB", (40, 24), (1, 2, 3)), upscaler_1="Nearest", upscaling_resize=2
    )
    assert upscaled.image.size == (80, 48) and upscaled.image.getpixel((79, 47))[:3] == (1, 2, 3)
