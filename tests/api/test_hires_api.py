"""Hires fix through /sdapi/v1/txt2img on a real server with the tiny checkpoint, the latent upscale modes
route, and the txt2img tab's "Hires. fix" section (its controls, the size line, paste)."""

from __future__ import annotations

import base64
import io
import json

import gradio as gr
import pytest
import requests
from PIL import Image

from webui.core.params import LATENT_UPSCALE_MODES, Txt2Img
from webui.ui import hires as hires_ui
from webui.ui import paste, txt2img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 5, "seed": 3, "sampler_name": "Euler"}


def decode(image_b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(image_b64)))


def test_txt2img_with_enable_hr_makes_the_upscaled_image_with_a1111s_keys(running_app):
    app, url = running_app
    payload = {**SMALL, "prompt": "a cat", "enable_hr": True, "hr_scale": 2, "hr_second_pass_steps": 2}
    response = requests.post(f"{url}/sdapi/v1/txt2img", json=payload, timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    assert decode(body["images"][0]).size == (128, 128)
    text = json.loads(body["info"])["infotexts"][0]
    # A1111's API defaults: denoising 0.75, no hr_upscaler (the default latent mode, no key written)
    assert "Denoising strength: 0.75, " in text and "Hires upscale: 2, Hires steps: 2" in text
    assert "Hires upscaler" not in text and "Hires sampler" not in text
    # resize-to and a pixel upscaler
    payload |= {"hr_resize_x": 96, "hr_resize_y": 0, "hr_upscaler": "Lanczos", "denoising_strength": 0.3}
    body = requests.post(f"{url}/sdapi/v1/txt2img", json=payload, timeout=300).json()
    assert decode(body["images"][0]).size == (96, 96)
    text = json.loads(body["info"])["infotexts"][0]
    assert "Hires resize: 96x0" in text and "Hires upscale:" not in text and "Hires upscaler: Lanczos" in text


def test_an_unknown_hires_upscaler_is_a_422_naming_it(running_app):
    _, url = running_app
    payload = {**SMALL, "enable_hr": True, "hr_upscaler": "NoSuchUpscaler"}
    response = requests.post(f"{url}/sdapi/v1/txt2img", json=payload, timeout=60)
    assert response.status_code == 422 and "NoSuchUpscaler" in response.text


def test_latent_upscale_modes_are_listed_as_a1111_does(running_app):
    _, url = running_app
    response = requests.get(f"{url}/sdapi/v1/latent-upscale-modes", timeout=10)
    assert response.json() == [{"name": name} for name in LATENT_UPSCALE_MODES]


def test_the_txt2img_tab_has_the_hires_section_and_paste_fills_it(running_app):
    app, _ = running_app
    with gr.Blocks():
        tab = txt2img.build_tab(app.services)
    controls = tab.controls
    assert controls["hr_upscaler"].choices[0][0] == "Latent"
    assert {"Lanczos", "Nearest", "None"} <= {label for label, _ in controls["hr_upscaler"].choices}
    section = next(s for s in tab.sections if isinstance(s, hires_ui.HiresSection))
    values = [True, "Nearest", 5, 0.4, 1.5, 0, 0, "Use same checkpoint", "DDIM", "Use same scheduler", "", ""]
    params = section.apply(Txt2Img(), values)
    assert isinstance(params, Txt2Img) and params.enable_hr and params.hr_upscaler == "Nearest"
    assert (params.hr_second_pass_steps, params.denoising_strength, params.hr_scale) == (5, 0.4, 1.5)
    # A1111's infotext → the tab's controls
    text = (
        "a cat\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent (nearest)"
    )
    pasted = paste.read(text, params_type=Txt2Img)
    assert pasted.values["enable_hr"] is True and pasted.values["hr_upscaler"] == "Latent (nearest)"
    assert (pasted.values["hr_scale"], pasted.values["hr_second_pass_steps"]) == (1.5, 10)
    assert (
        pasted.values["denoising_strength"] == 0.45 and pasted.values["hr_sampler_name"] == "Use same sampler"
    )
    # an infotext without hires keys turns it off again
    assert (
        paste.read("a cat\nSteps: 20, Seed: 1, Size: 512x512", params_type=Txt2Img).values["enable_hr"]
        is False
    )


def test_the_size_line_says_what_the_second_pass_makes():
    assert hires_ui.preview(True, 512, 512, 2.0, 0, 0) == "from 512x512 to 1024x1024"
    assert hires_ui.preview(True, 512, 768, 1.5, 0, 0) == "from 512x768 to 768x1152"
    assert hires_ui.preview(True, 512, 768, 2.0, 1024, 0) == "from 512x768 to 1024x1536"
    assert hires_ui.preview(True, 512, 512, 2.0, 1024, 768) == "from 512x512 to 1024x768"
    assert hires_ui.preview(False, 512, 512, 2.0, 0, 0) == ""
