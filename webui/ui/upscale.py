"""The ✨ button under txt2img's gallery (A1111 1.8's "Upscale", elem_id `txt2img_upscale`): hires fix's
second pass on the selected image alone, with the tab's current settings (hires fix turned on) and the
image's own seed and variation seed from its infotext; the first pass is not run again
(engine.sampling.hires_upscale). The upscaled image takes the selected one's place in the gallery."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from webui.core import infotext
from webui.core.errors import UserError
from webui.core.params import GenerationParams, Txt2Img
from webui.services.batch import open_image
from webui.ui.errors import user_error
from webui.ui.generation import GenerationTab
from webui.ui.owners import owner_of

if TYPE_CHECKING:
    from webui.services.container import Services

GRID = "Grid"  # the gallery caption of a batch grid (ui.generation)


def upscale_params(params: GenerationParams, image: Image.Image, fields: Mapping[str, str]) -> Txt2Img:
    """What ✨ runs: `params` with hires fix on, one image, `image` as the first pass (its size the first
    pass's) and the seed and variation seed the image was made with (A1111: -1 when its infotext has none)."""
    if not isinstance(params, Txt2Img):
        raise UserError("✨ Upscale is for txt2img")
    try:
        seed, subseed = int(fields.get("Seed", -1)), int(fields.get("Variation seed", -1))
    except ValueError as error:
        raise UserError(f"the image's infotext has an unreadable seed: {error}") from error
    return dataclasses.replace(
        params,
        enable_hr=True,
        firstpass_image=image,
        width=image.width,
        height=image.height,
        seed=seed,
        subseed=subseed,
        batch_size=1,
        n_iter=1,
    )


def _image(item: Any) -> Image.Image:
    value = item[0] if isinstance(item, (tuple, list)) else item
    return value if isinstance(value, Image.Image) else open_image(Path(value))


def add_button(app: Services, tab: GenerationTab) -> gr.Button:
    """The ✨ button in `tab`'s output row and its handler."""
    read = tab.read
    if read is None:
        raise ValueError(f"the {tab.name} tab does not say how it reads its controls")
    with tab.output_buttons:
        button = gr.Button("✨", elem_id=f"{tab.name}_upscale", min_width=40, scale=0)
    # (index, infotext) of the image last selected: a gallery of other images since then selects the first
    selected = gr.State(None)

    def remember(texts: list[str], event: gr.SelectData) -> tuple[int, str]:
        return event.index, texts[event.index] if 0 <= event.index < len(texts) else ""

    tab.gallery.select(remember, inputs=tab.infotexts, outputs=selected, queue=False)

    def upscale(request: gr.Request, *values: Any) -> tuple[Any, ...]:
        *controls, items, texts, chosen = values
        if not items:
            raise user_error("No image to upscale: generate one first", tab.name)
        index = chosen[0] if chosen and chosen[0] < len(texts) and texts[chosen[0]] == chosen[1] else 0
        caption = items[index][1] if isinstance(items[index], (tuple, list)) else None
        if caption == GRID:
            raise user_error("Select an image to upscale, not the grid", tab.name)
        try:
            params, overrides = read(controls)
            fields = infotext.parse(texts[index]) if index < len(texts) else {}
            params = upscale_params(params, _image(items[index]), fields)
            result = app.generation.submit(
                params, override_settings=overrides or None, owner=owner_of(request)
            ).wait()
        except UserError as error:
            raise user_error(error, tab.name) from error
        first = result.index_of_first_image
        if len(result.images) <= first:  # interrupted before the image was done
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        gallery = [tuple(item) if isinstance(item, (tuple, list)) else (item, None) for item in items]
        gallery[index] = (result.images[first], f"Seed {result.seeds[first]}")
        texts = [*texts[:index], result.infotexts[first], *texts[index + 1 :]]
        return gallery, result.infotexts[first], texts, (index, result.infotexts[first])

    button.click(
        upscale,
        inputs=[*tab.inputs, tab.gallery, tab.infotexts, selected],
        outputs=[tab.gallery, tab.infotext, tab.infotexts, selected],
    )
    return button
