"""The Extra Networks panel and the token counters, in a real browser; plus the panel's helpers alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from webui.engine.networks.lora import LoraEntry
from webui.ui.extra_networks import find_preview, metadata_summary, read_card, toggle_lora

METADATA = {
    "ss_base_model_version": "sd_v1",
    "ss_output_name": "tiny_style_v2",
    "ss_network_dim": "4",
    "ss_network_alpha": "2",
    "ss_tag_frequency": json.dumps({"10_style": {"red": 3, "circle": 2}, "5_more": {"red": 1, "<b>": 1}}),
}


def write_lora(path: Path, metadata: dict[str, str] | None = None) -> Path:
    """A minimal kohya-named LoRA; the panel reads only its header."""
    key = "lora_te_text_model_encoder_layers_0_mlp_fc1"
    state = {f"{key}.lora_down.weight": torch.zeros(4, 32), f"{key}.lora_up.weight": torch.zeros(37, 4)}
    save_file(state, path, metadata=metadata)
    return path


def test_toggle_appends_with_a_space_and_removes_any_weight() -> None:
    assert toggle_lora("", "style") == "<lora:style:1>"
    assert toggle_lora("a cat", "style") == "a cat <lora:style:1>"
    assert toggle_lora("a cat\n", "style") == "a cat\n<lora:style:1>"
    assert toggle_lora("a cat <lora:style:1>", "style") == "a cat"
    assert toggle_lora("a cat <lora:style:0.4:0.2> red", "style") == "a cat red"
    assert toggle_lora("<lora:style:1> a cat", "style") == "a cat"
    # Another LoRA whose name starts the same is left alone; regex characters in names are literal.
    assert toggle_lora("a <lora:style2:1>", "style") == "a <lora:style2:1> <lora:style:1>"
    assert toggle_lora("a <lora:s.y:1>", "sxy") == "a <lora:s.y:1> <lora:sxy:1>"


def test_metadata_summary_and_previews(tmp_path: Path) -> None:
    assert metadata_summary(METADATA) == (
        "Base: sd_v1",
        "Output name: tiny_style_v2",
        "Dim: 4, alpha: 2",
        "3 training tags",
    )
    assert metadata_summary({"ss_tag_frequency": "not json"}) == ()
    root = tmp_path / "Lora"
    root.mkdir()
    lora = write_lora(root / "style.safetensors", METADATA)
    entry = LoraEntry("style", lora)
    assert find_preview(entry, root) is None
    Image.new("RGB", (8, 8)).save(root / "style.preview.png")
    assert find_preview(entry, root) == (root / "style.preview.png").resolve()
    Image.new("RGB", (8, 8)).save(root / "style.png")
    assert find_preview(entry, root) == (root / "style.png").resolve()  # A1111's order: plain name first
    # A preview that links to a file outside the LoRA folder is never used.
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(outside)
    (root / "style.png").unlink()
    (root / "style.preview.png").unlink()
    (root / "style.jpg").symlink_to(outside)
    assert find_preview(entry, root) is None
    broken = root / "broken.safetensors"
    broken.write_bytes(b"not safetensors")
    summary = read_card(LoraEntry("broken", broken), root).summary
    assert summary[0].startswith("Unreadable: broken.safetensors")


# --- in the browser --------------------------------------------------------------------------------

from tests.browser.helpers import open_ui, playwright  # noqa: E402


@pytest.mark.browser
def test_lora_card_toggles_its_tag_in_the_prompt(browser, running_app) -> None:
    app, base_url = running_app
    folder = app.paths.lora_dir
    folder.mkdir(parents=True, exist_ok=True)
    write_lora(folder / "tinystyle.safetensors", METADATA)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(folder / "tinystyle.png")
    page = browser.new_page()
    open_ui(page, base_url)
    panel = page.locator("#txt2img_extra_networks_panel")
    playwright.expect(panel).to_be_hidden()
    page.locator("#txt2img_extra_networks").click()
    playwright.expect(panel).to_be_visible(timeout=10_000)
    page.locator("#txt2img_extra_refresh").click()  # the file came after start-up: rescan

    card = page.locator("#txt2img_lora_cards .extra-network-card[data-name=tinystyle]")
    playwright.expect(card).to_be_visible(timeout=10_000)
    playwright.expect(card).to_contain_text("Base: sd_v1")
    playwright.expect(card).to_contain_text("3 training tags")
    assert card.locator("img").get_attribute("src").startswith("data:image/jpeg;base64,")

    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a red circle")
    card.click()
    playwright.expect(prompt).to_have_value("a red circle <lora:tinystyle:1>", timeout=10_000)
    card.click()
    playwright.expect(prompt).to_have_value("a red circle", timeout=10_000)
    page.close()


@pytest.mark.browser
def test_token_counters_follow_typing(browser, running_app) -> None:
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    counter = page.locator("#txt2img_token_counter")
    negative_counter = page.locator("#txt2img_negative_token_counter")
    playwright.expect(counter).to_have_text(re.compile(r"^\s*0/75\s*$"))
    page.locator("#txt2img_prompt textarea").fill("cat " * 100)
    playwright.expect(counter).to_have_text(re.compile(r"^\s*100/150\s*$"), timeout=15_000)
    page.locator("#txt2img_prompt textarea").press_sequentially(", (dog:1.2)")
    playwright.expect(counter).to_have_text(re.compile(r"^\s*102/150\s*$"), timeout=15_000)
    page.locator("#txt2img_neg_prompt textarea").fill("blurry BREAK ugly")
    playwright.expect(negative_counter).to_have_text(re.compile(r"^\s*76/150\s*$"), timeout=15_000)
    playwright.expect(counter).to_have_text(re.compile(r"^\s*102/150\s*$"))
    page.close()
