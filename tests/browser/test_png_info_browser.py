"""PNG Info in Chromium: drop one of our images, read its parameters, send them to txt2img; ↙ paste."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright
from webui.core.params import Txt2Img

pytestmark = pytest.mark.browser


def slider_value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input[type=number]").input_value()


def test_upload_our_image_and_send_its_parameters_to_txt2img(browser, running_app):
    app, base_url = running_app
    params = Txt2Img(
        prompt="a green pyramid, (sharp:1.1)", negative_prompt="fog", steps=4, cfg_scale=5.5,
        sampler_name="Euler", seed=777, width=72, height=64,
    )  # fmt: skip
    result = app.generate(params)
    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(result.paths[0])
    shown = page.locator("#pnginfo_generation_info textarea")
    playwright.expect(shown).to_have_value(result.infotexts[0], timeout=30_000)
    playwright.expect(page.locator("#pnginfo_fields")).to_contain_text("777")

    page.locator("#pnginfo_send_to_txt2img").click()
    prompt = page.locator("#txt2img_prompt textarea")
    playwright.expect(prompt).to_be_visible(timeout=30_000)  # the txt2img tab is shown again
    playwright.expect(prompt).to_have_value(params.prompt, timeout=30_000)
    assert page.locator("#txt2img_neg_prompt textarea").input_value() == "fog"
    assert page.locator("#txt2img_seed input").input_value() == "777"
    assert (slider_value(page, "txt2img_width"), slider_value(page, "txt2img_height")) == ("72", "64")
    assert slider_value(page, "txt2img_steps") == "4"
    assert slider_value(page, "txt2img_cfg_scale") == "5.5"
    assert page.locator("#txt2img_sampling input").input_value() == "Euler"

    # To img2img: the parameters and the picture itself.
    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_send_to_img2img").click()
    playwright.expect(page.locator("#img2img_prompt textarea")).to_have_value(params.prompt, timeout=30_000)
    playwright.expect(page.locator("#img2img_image img")).to_be_visible(timeout=30_000)
    assert page.locator("#img2img_seed input").input_value() == "777"
    page.close()


def test_paste_button_reads_infotext_typed_into_the_prompt(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill(
        "a tiny boat\nNegative prompt: waves\n"
        "Steps: 9, Sampler: Euler a, CFG scale: 3, Seed: 4321, Size: 96x80"
    )
    page.locator("#txt2img_paste").click()
    playwright.expect(prompt).to_have_value("a tiny boat", timeout=30_000)
    assert page.locator("#txt2img_neg_prompt textarea").input_value() == "waves"
    assert page.locator("#txt2img_seed input").input_value() == "4321"
    assert (slider_value(page, "txt2img_width"), slider_value(page, "txt2img_height")) == ("96", "80")
    assert slider_value(page, "txt2img_steps") == "9"
    page.close()


def test_image_without_parameters_gets_a_message_then_an_rgba_one_shows_them(browser, running_app, tmp_path):
    from PIL import Image

    from webui.services.outputs import embed_infotext

    _, base_url = running_app
    plain = tmp_path / "plain.png"
    Image.new("RGB", (16, 16), "red").save(plain)
    rgba = tmp_path / "rgba.png"  # not gradio's default image mode (RGB)
    rgba.write_bytes(
        embed_infotext(Image.new("RGBA", (16, 16)), "cat\nSteps: 3, Seed: 8, Size: 16x16", "png")
    )
    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(plain))
    message = page.locator("#pnginfo_message")
    playwright.expect(message).to_contain_text(re.compile("no generation parameters"), timeout=30_000)
    assert page.locator("#pnginfo_generation_info textarea").input_value() == ""
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(rgba))
    shown = page.locator("#pnginfo_generation_info textarea")
    playwright.expect(shown).to_have_value("cat\nSteps: 3, Seed: 8, Size: 16x16", timeout=30_000)
    page.close()
