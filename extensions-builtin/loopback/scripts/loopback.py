"""Loopback (A1111's built-in img2img script, written on the plugin API).

img2img runs "Loops" times, each run's picture the next one's input and its seed one more; the denoising
strength goes from the tab's value to "Final denoising strength" along the "Denoising strength curve"
(Aggressive: fast at first, Linear, Lazy: slow at first). Batch count repeats the whole loop from the
original picture. The results (the last picture of each batch, or every loop's picture for one batch)
come with a one-row grid when there are several. Infotext: "Final denoising strength", "Denoising curve".
"""

from __future__ import annotations

import math

from PIL import Image

from webui.plugins import api

CURVES = ("Aggressive", "Linear", "Lazy")
MAX_LOOPS = 32


def strength_at(loop: int, loops: int, initial: float, final: float, curve: str) -> float:
    """The denoising strength of run `loop` (0-based) of `loops`."""
    if loops == 1:
        return initial
    progress = loop / (loops - 1)
    if curve == "Aggressive":
        progress = math.sin(progress * math.pi / 2)
    elif curve == "Lazy":
        progress = 1 - math.cos(progress * math.pi / 2)
    return initial + (final - initial) * progress


class Loopback(api.Script):
    def title(self) -> str:
        return "Loopback"

    def show(self, is_img2img: bool) -> bool:
        return is_img2img

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        loops = gr.Slider(1, MAX_LOOPS, value=4, step=1, label="Loops", elem_id="img2img_loopback_loops")
        final = gr.Slider(
            0, 1, value=0.5, step=0.01, label="Final denoising strength", elem_id="img2img_loopback_final"
        )
        curve = gr.Dropdown(
            list(CURVES), value="Linear", label="Denoising strength curve", elem_id="img2img_loopback_curve"
        )
        return [loops, final, curve]

    def run(
        self, p: api.Processing, loops: float = 4, final: float = 0.5, curve: str = "Linear", *_: object
    ) -> api.Processed:
        loops = int(loops)
        if not 1 <= loops <= MAX_LOOPS:
            raise api.InvalidParameter(f"Loopback: Loops must be between 1 and {MAX_LOOPS}, got {loops}")
        if curve not in CURVES:
            raise api.InvalidParameter(f"Loopback: unknown curve {curve!r}; valid: {', '.join(CURVES)}")
        if not p.init_images:
            raise api.InvalidParameter("Loopback: needs an img2img input image")
        api.fix_seed(p)
        p.extra_generation_params["Final denoising strength"] = final
        p.extra_generation_params["Denoising curve"] = curve
        batches, original, initial = p.n_iter, p.init_images, p.denoising_strength
        fill = p.inpainting_fill
        p.batch_size, p.n_iter = 1, 1
        images: list[Image.Image] = []
        infotexts: list[str] = []
        seeds: list[int] = []
        paths: list[str] = []
        interrupted = False
        for _batch in range(batches):
            p.init_images, p.denoising_strength, p.inpainting_fill = original, initial, fill
            last: tuple[Image.Image, str, int] | None = None
            for loop in range(loops):
                processed = api.process_images(p)
                if processed.interrupted or not processed.images:
                    interrupted = True
                    break
                last = (processed.images[0], processed.infotexts[0], processed.seed)
                paths += processed.paths
                if batches == 1:
                    images.append(last[0])
                    infotexts.append(last[1])
                    seeds.append(last[2])
                p.seed = processed.seed + 1
                p.denoising_strength = strength_at(loop + 1, loops, initial, final, curve)
                p.init_images = (last[0],)
                p.inpainting_fill = 1  # "original": later loops keep what the first one painted
            if batches > 1 and last is not None and not interrupted:
                images.append(last[0])
                infotexts.append(last[1])
                seeds.append(last[2])
            if interrupted:
                break
        if len(images) > 1:
            grid = api.image_grid(images, cols=len(images))  # one row
            grid_path = api.save_grid(p, grid, infotexts[0], seeds[0])
            images, infotexts, seeds = [grid, *images], [infotexts[0], *infotexts], [seeds[0], *seeds]
            paths = [grid_path, *paths] if grid_path else paths
        return api.Processed(
            p, images, infotexts=infotexts, seeds=seeds, paths=paths, interrupted=interrupted
        )
