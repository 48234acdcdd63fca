"""Example extension: stamp a text on every image and record it in the infotext as "Watermark: …".

Shows the parts most extensions use: an always-visible Script with its own controls (ui), a process()
hook that adds to the infotext, a postprocess_image() hook that changes the picture, an option of its
own (on_ui_settings) and a tab of its own (on_ui_tabs).
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from webui.plugins import api

CORNERS = ("bottom right", "top left")


def stamp(image: Image.Image, text: str, corner: str) -> Image.Image:
    """`image` with `text` written in a corner, white on a dark box so it shows on any picture."""
    stamped = image.convert("RGB")
    draw = ImageDraw.Draw(stamped)
    font = ImageFont.load_default(size=max(10, stamped.height // 16))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 4, bottom - top + 4
    x, y = (stamped.width - width, stamped.height - height) if corner == "bottom right" else (0, 0)
    draw.rectangle((x, y, x + width, y + height), fill="black")
    draw.text((x + 2 - left, y + 2 - top), text, fill="white", font=font)
    return stamped


class Watermark(api.Script):
    def title(self) -> str:
        return "Watermark"

    def show(self, is_img2img: bool) -> object:
        return api.AlwaysVisible

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        tab = "img2img" if is_img2img else "txt2img"
        enabled = gr.Checkbox(label="Add a watermark", value=False, elem_id=f"{tab}_watermark_enabled")
        default = getattr(api.cmd_opts(), "watermark_text", None) or "made with webui"  # see preload.py
        text = gr.Textbox(label="Watermark text", value=default, elem_id=f"{tab}_watermark_text")
        self.infotext_fields = [(text, "Watermark")]
        return [enabled, text]

    def process(self, p: api.Processing, enabled: bool, text: str) -> None:
        if enabled and text:
            p.extra_generation_params["Watermark"] = text

    def postprocess_image(
        self, p: api.Processing, pp: api.PostprocessImageArgs, enabled: bool, text: str
    ) -> None:
        if enabled and text:
            pp.image = stamp(pp.image, text, api.opts("watermark_corner"))


def add_options() -> None:
    api.add_option("watermark_corner", CORNERS[0], "Watermark corner", "Watermark", choices=CORNERS)


def watermark_tab() -> list:
    import gradio as gr

    with gr.Blocks() as tab:
        gr.Markdown("Try the watermark on a plain image.", elem_id="watermark_tab_intro")
        with gr.Row():
            text = gr.Textbox(label="Text", value="made with webui", elem_id="watermark_tab_text")
            button = gr.Button("Stamp", elem_id="watermark_tab_stamp")
        result = gr.Image(label="Stamped", elem_id="watermark_tab_result", type="pil")
        button.click(
            lambda words: stamp(Image.new("RGB", (256, 128), "steelblue"), words, CORNERS[0]),
            inputs=text,
            outputs=result,
        )
    return [(tab, "Watermark", "watermark_tab")]


api.on_ui_settings(add_options)
api.on_ui_tabs(watermark_tab)
