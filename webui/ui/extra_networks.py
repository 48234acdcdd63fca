"""The Extra Networks panel: a "Lora" tab of cards; clicking a card adds `<lora:name:1>` to the prompt,
clicking it again takes the tag out (as A1111's cards do).

Cards show the file's name, a summary of its safetensors metadata (the header only: no tensor is read)
and a preview image found beside the file. Previews go to the page as small inline thumbnails, so no
file is ever served from disk: nothing outside the LoRA folder, and not even the LoRA files, can be
fetched through the panel.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from webui.core.errors import UserError
from webui.services.models import LoraEntry, LoraLibrary, ModelsService

log = logging.getLogger(__name__)

# A1111's preview names: <name>.png, <name>.preview.png, … beside the LoRA file
PREVIEW_NAMES = tuple(
    f"{infix}{suffix}" for infix in ("", ".preview") for suffix in (".png", ".jpg", ".jpeg", ".webp")
)
THUMBNAIL_SIZE = (256, 256)
DEFAULT_MULTIPLIER = 1.0  # A1111's "Default multiplier for extra networks"
CARDS_PER_PAGE = 100

_CARD_CSS = "display:flex;flex-direction:column;gap:4px;width:160px;text-align:left;"
_PREVIEW_CSS = "width:160px;height:160px;object-fit:cover;border-radius:6px;"
_SUMMARY_CSS = "font-size:0.8em;opacity:0.8"
_EMPTY_PREVIEW_CSS = (
    "width:160px;height:160px;border-radius:6px;display:flex;align-items:center;justify-content:center;"
    "background:var(--background-fill-secondary);font-size:3em;"
)


@dataclass(frozen=True)
class LoraCard:
    name: str
    summary: tuple[str, ...]  # short metadata lines, e.g. "Base: sd_v1", "12 training tags"
    preview: Path | None  # an image inside the LoRA folder, or None


def metadata_summary(metadata: dict[str, str]) -> tuple[str, ...]:
    """The kohya training metadata worth a glance on a card (missing keys are left out)."""
    lines = []
    base = (
        metadata.get("ss_base_model_version")
        or metadata.get("ss_sd_model_name")
        or metadata.get("modelspec.architecture")
    )
    if base:
        lines.append(f"Base: {base}")
    if metadata.get("ss_output_name"):
        lines.append(f"Output name: {metadata['ss_output_name']}")
    if metadata.get("ss_network_dim"):
        alpha = metadata.get("ss_network_alpha")
        lines.append(f"Dim: {metadata['ss_network_dim']}" + (f", alpha: {alpha}" if alpha else ""))
    tags = _tag_count(metadata.get("ss_tag_frequency"))
    if tags:
        lines.append(f"{tags} training tag{'s' if tags != 1 else ''}")
    return tuple(lines)


def _tag_count(frequency: str | None) -> int:
    """Distinct tags in kohya's ss_tag_frequency ({dataset: {tag: count}}); 0 when absent or unreadable."""
    try:
        datasets = json.loads(frequency or "{}")
        return len({tag for tags in datasets.values() for tag in tags})
    except (ValueError, AttributeError, TypeError):
        return 0


def find_preview(entry: LoraEntry, root: Path) -> Path | None:
    """The preview image beside the LoRA file, if it really lies inside `root` (links out are ignored)."""
    folder = root.resolve()
    for name in PREVIEW_NAMES:
        candidate = entry.path.with_name(entry.path.stem + name)
        try:
            resolved = candidate.resolve()
        except OSError:
            continue
        if resolved.is_file() and resolved.is_relative_to(folder):
            return resolved
    return None


def read_card(entry: LoraEntry, root: Path) -> LoraCard:
    try:
        summary = metadata_summary(ModelsService.file_metadata(entry.path))
    except UserError as error:
        summary = (f"Unreadable: {error}",)
    return LoraCard(entry.name, summary, find_preview(entry, root))


def thumbnail_uri(path: Path) -> str | None:
    """A small JPEG of the image as a data: URI; None when the file is no readable image."""
    try:
        with Image.open(path) as image:
            image.thumbnail(THUMBNAIL_SIZE)
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        log.warning("LoRA preview %s unreadable: %s", path, error)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def card_html(card: LoraCard) -> str:
    uri = thumbnail_uri(card.preview) if card.preview else None
    preview = (
        f'<img src="{uri}" alt="" style="{_PREVIEW_CSS}">'
        if uri
        else f'<div style="{_EMPTY_PREVIEW_CSS}">🎴</div>'
    )
    summary = "".join(f'<div style="{_SUMMARY_CSS}">{html.escape(line)}</div>' for line in card.summary)
    name = html.escape(card.name)
    return (
        f'<div class="extra-network-card" data-name="{name}" title="{name}" style="{_CARD_CSS}">'
        f'{preview}<div class="extra-network-name" style="font-weight:bold;word-break:break-all">{name}</div>'
        f"{summary}</div>"
    )


def lora_tag(name: str, multiplier: float = DEFAULT_MULTIPLIER) -> str:
    return f"<lora:{name}:{multiplier:g}>"


def toggle_lora(prompt: str, name: str, multiplier: float = DEFAULT_MULTIPLIER) -> str:
    """The prompt with `<lora:name:…>` taken out if it has one (any weight, with the separator before
    it), else with `<lora:name:multiplier>` appended after a space."""
    tag = re.compile(rf"[ \t]*<lora:{re.escape(name)}(?::[^>]*)?>")
    removed = tag.sub("", prompt)
    if removed != prompt:
        return removed.lstrip(" \t") if tag.match(prompt) else removed
    separator = " " if prompt and not prompt[-1].isspace() else ""
    return prompt + separator + lora_tag(name, multiplier)


def _cards(loras: LoraLibrary | None) -> tuple[list[list[str]], list[str], str]:
    """(dataset samples, card names in the same order, note shown above them)."""
    if loras is None:
        return [], [], "No LoRA folder is configured."
    cards = [read_card(entry, loras.root) for entry in loras.entries]
    empty = f"No LoRA files yet: put `.safetensors` or `.pt` files into `{loras.root}` and refresh."
    note = "" if cards else empty
    return [[card_html(card)] for card in cards], [card.name for card in cards], note


def build_panel(loras: LoraLibrary | None, prompt: gr.Textbox, toggle: gr.Button, tabname: str) -> gr.Column:
    """The panel under the prompts, hidden until `toggle` (A1111's 🎴 button) is clicked."""
    with gr.Column(visible=False, elem_id=f"{tabname}_extra_networks_panel") as panel:
        with gr.Tabs(elem_id=f"{tabname}_extra_tabs"):
            with gr.Tab("Lora", elem_id=f"{tabname}_lora_tab"):
                with gr.Row(equal_height=True):
                    note = gr.Markdown("", elem_id=f"{tabname}_lora_note")
                    refresh = gr.Button(
                        "🔄 Refresh", elem_id=f"{tabname}_extra_refresh", scale=0, min_width=120
                    )
                cards = gr.Dataset(
                    components=[gr.HTML(render=False)],
                    samples=[],
                    type="index",
                    layout="gallery",
                    samples_per_page=CARDS_PER_PAGE,
                    elem_id=f"{tabname}_lora_cards",
                    show_label=False,
                )
    shown = gr.State(False)
    names = gr.State([])  # the card names in dataset order, so a click maps to the card it was made for

    def show_cards(rescan: bool) -> tuple[gr.Dataset, list[str], str]:
        if rescan and loras is not None:
            loras.refresh()
        samples, card_names, text = _cards(loras)
        return gr.Dataset(samples=samples), card_names, text

    def flip(visible: bool) -> tuple[bool, gr.Column]:
        return not visible, gr.Column(visible=not visible)

    def pick(index: int | None, text: str, card_names: list[str]) -> str:
        if index is None or not 0 <= index < len(card_names):
            return text
        return toggle_lora(text or "", card_names[index])

    toggle.click(flip, inputs=shown, outputs=[shown, panel], queue=False).then(
        lambda: show_cards(False), outputs=[cards, names, note], queue=False
    )
    refresh.click(lambda: show_cards(True), outputs=[cards, names, note], queue=False)
    cards.click(pick, inputs=[cards, prompt, names], outputs=prompt, queue=False)
    return panel
