"""Outpainting mk2 (A1111's built-in img2img script, written on the plugin API).

The picture grows by "Pixels to expand" on each chosen side (the grown size rounded up to multiples of
64, as A1111: webui/core/outpaint.py), one side after the other: left, right, up, down. For each side the
new strip is first filled with *matched noise* (random noise given the picture's own frequency spectrum,
its magnitude to the power "Fall-off exponent" and its phase, then the picture's colour histogram), and
then inpainted by img2img with "original" masked content over a window of the img2img Width (or Height)
along that side. The mask's edge lies "Mask blur" pixels inside the old picture and is blurred by four
times that, as A1111 does. "Color variation": how colourful the starting noise is (0: grey).

Infotext: A1111 writes no keys of its own for this script; every image carries its first inpaint run's
infotext (Mask blur, Denoising strength, Size of the window, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from webui.core import outpaint
from webui.plugins import api

TITLE = "Outpainting mk2"
ORIGINAL = 1  # "Masked content: original": the sampler starts from the matched noise
MAX_MASK_BLUR = 64  # the mask blur field's limit; A1111's 4 x 64 would blur far past any window


def _spectrum(values: np.ndarray) -> np.ndarray:
    """Each channel's 2-D Fourier transform (orthonormal), the zero frequency in the middle."""
    return np.fft.fftshift(np.fft.fft2(values, axes=(0, 1), norm="ortho"), axes=(0, 1))


def _pixels(spectrum: np.ndarray) -> np.ndarray:
    """The inverse of _spectrum (real part)."""
    return np.fft.ifft2(np.fft.ifftshift(spectrum, axes=(0, 1)), axes=(0, 1), norm="ortho").real


def _low_pass(height: int, width: int) -> np.ndarray:
    """1 / ((1 + x²)(1 + y²)) over the centred frequencies, x and y running over [-1, 1) stretched by
    the aspect ratio so that the fall-off is the same in both directions."""
    short = min(height, width)
    x = (np.arange(width) / width * 2 - 1) * width / short
    y = (np.arange(height) / height * 2 - 1) * height / short
    return 1 / ((1 + y[:, None] ** 2) * (1 + x[None, :] ** 2))


def match_histograms(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`values` (N, C) remapped channel by channel so that their distribution is `reference`'s (M, C):
    the value of rank r among N takes the reference's value at the same quantile."""
    matched = np.empty_like(values)
    count, known = len(values), len(reference)
    quantiles = (np.arange(count) + 0.5) / count
    reference_quantiles = (np.arange(known) + 0.5) / known
    for channel in range(values.shape[1]):
        order = np.argsort(values[:, channel], kind="stable")
        matched[order, channel] = np.interp(quantiles, reference_quantiles, np.sort(reference[:, channel]))
    return matched


def matched_noise(image: np.ndarray, mask: np.ndarray, falloff: float, color_variation: float) -> np.ndarray:
    """`image` (H, W, 3, floats in [0, 1]) with the part `mask` (H, W, 1 = fill) covers replaced by noise
    that looks like the rest: low-passed random noise, its spectrum's magnitude squared times the
    picture's magnitude to the power `falloff`, with the picture's phase; then given the colour
    histogram of the unmasked pixels. The noise's own seed is fixed, so the result depends on the
    generation seed only (as A1111)."""
    fill, reference = mask > 1e-6, mask < 1e-3
    if not fill.any() or not reference.any():
        return image.copy()
    weight = mask[..., None]
    # the hole holds the known mean colour, so its edges add little to the picture's spectrum
    windowed = image * (1 - weight) + image[reference].mean(axis=0) * weight
    source = _spectrum(windowed)
    magnitude = np.abs(source)
    phase = np.divide(source, magnitude, out=np.ones_like(source), where=magnitude > 0)
    noise = np.random.default_rng(0).random(image.shape)
    noise = noise * color_variation + noise.mean(axis=2, keepdims=True) * (1 - color_variation)
    noise = _pixels(_spectrum(noise) * _low_pass(*image.shape[:2])[..., None])
    shaped = _pixels(np.abs(_spectrum(noise)) ** 2 * magnitude**falloff * phase)
    shaped[fill] = match_histograms(shaped[fill], image[reference])
    return np.clip(image * (1 - weight) + shaped * weight, 0, 1)


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Growth:
    """One side's step: the pictures on their grown canvas (the new strip filled with matched noise),
    the window img2img repaints, its mask, and the grown pictures' size."""

    canvases: tuple[Image.Image, ...]
    window: Box
    mask: Image.Image
    size: tuple[int, int]

    def crops(self) -> tuple[Image.Image, ...]:
        return tuple(canvas.crop(self.window) for canvas in self.canvases)

    def finish(self, painted: list[Image.Image]) -> list[Image.Image]:
        """The repainted windows put back, each canvas cut to the grown size."""
        grown = []
        for canvas, image in zip(self.canvases, painted):
            canvas = canvas.copy()
            canvas.paste(image, self.window[:2])
            grown.append(canvas.crop((0, 0, *self.size)))
        return grown


def grow(
    pictures: list[Image.Image], side: str, amount: int, blur: int, falloff: float, variation: float,
    work_size: tuple[int, int],
) -> Growth:  # fmt: skip
    """The step that grows `pictures` (all one size) by `amount` pixels on `side`; the window is
    `work_size` (img2img's Width x Height) along the grown axis, the whole canvas across it."""
    width, height = pictures[0].size
    horizontal = side in ("left", "right")
    size = (width + amount, height) if horizontal else (width, height + amount)
    canvas_w, canvas_h = (math.ceil(length / 64) * 64 for length in size)
    x, y = (amount if side == "left" else 0), (amount if side == "up" else 0)
    keep = [x, y, x + width, y + height]  # the old picture less `blur` pixels along the seam
    seam = {"left": 0, "up": 1, "right": 2, "down": 3}[side]
    keep[seam] += blur if side in ("left", "up") else -blur
    mask = np.ones((canvas_h, canvas_w))
    mask[keep[1] : keep[3], keep[0] : keep[2]] = 0
    along = min(work_size[0] if horizontal else work_size[1], canvas_w if horizontal else canvas_h)
    at_end = (canvas_w if horizontal else canvas_h) - along
    start = 0 if side in ("left", "up") else at_end
    reaches = keep[seam] < along if side in ("left", "up") else keep[seam] > at_end
    if not reaches or keep[0] >= keep[2] or keep[1] >= keep[3]:
        label = "Width" if horizontal else "Height"
        raise api.InvalidParameter(
            f"{TITLE}: a {label} of {along} px does not reach past the {amount} new pixels and the mask "
            f"blur of {blur} on the {side} into the {width}x{height} picture; raise {label}, lower "
            "Pixels to expand or Mask blur"
        )
    window = (start, 0, start + along, canvas_h) if horizontal else (0, start, canvas_w, start + along)
    canvases = []
    for picture in pictures:
        canvas = Image.new("RGB", (canvas_w, canvas_h))
        canvas.paste(picture, (x, y))
        filled = matched_noise(np.asarray(canvas, dtype=np.float64) / 255, mask, falloff, variation)
        canvases.append(Image.fromarray(np.round(filled * 255).astype(np.uint8), "RGB"))
    mask_image = Image.fromarray((mask * 255).astype(np.uint8), "L").crop(window)
    return Growth(tuple(canvases), window, mask_image, size)


class OutpaintingMk2(api.Script):
    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> bool:
        return is_img2img

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        def elem(name: str) -> str:
            return f"img2img_script_outpainting_mk2_{name}"

        info = gr.HTML(
            '<p style="margin-bottom:0.75em">Recommended settings: Sampling Steps: 80-100, '
            "Sampler: Euler a, Denoising strength: 0.8</p>"
        )
        pixels = gr.Slider(8, 256, value=128, step=8, label="Pixels to expand", elem_id=elem("pixels"))
        blur = gr.Slider(0, 64, value=8, step=1, label="Mask blur", elem_id=elem("mask_blur"))
        direction = gr.CheckboxGroup(
            list(outpaint.DIRECTIONS), value=list(outpaint.DIRECTIONS), label="Outpainting direction",
            elem_id=elem("direction"),
        )  # fmt: skip
        falloff = gr.Slider(
            0.0, 4.0, value=1.0, step=0.01, label="Fall-off exponent (lower=higher detail)",
            elem_id=elem("noise_q"),
        )  # fmt: skip
        variation = gr.Slider(
            0.0, 1.0, value=0.05, step=0.01, label="Color variation", elem_id=elem("color_variation")
        )
        return [info, pixels, blur, direction, falloff, variation]  # A1111's order (its API script_args)

    def run(
        self, p: api.Processing, _info: str = "", pixels: float = 128, mask_blur: float = 8,
        direction: object = outpaint.DIRECTIONS, noise_q: float = 1.0, color_variation: float = 0.05,
    ) -> api.Processed:  # fmt: skip
        amount = outpaint.pixels(pixels, TITLE)
        blur = int(outpaint.number(mask_blur, "Mask blur", 0, 64, TITLE))
        sides = outpaint.directions(direction, TITLE)
        falloff = outpaint.number(noise_q, "Fall-off exponent", 0, 4, TITLE)
        variation = outpaint.number(color_variation, "Color variation", 0, 1, TITLE)
        if not p.init_images:
            raise api.InvalidParameter(f"{TITLE}: needs an img2img input image")
        api.fix_seed(p)
        source = p.init_images[0].convert("RGB")
        margins = outpaint.margins(source.size, amount, sides)
        work_size = (p.width, p.height)
        p.mask_blur = min(blur * 4, MAX_MASK_BLUR)
        p.inpainting_fill, p.inpaint_full_res, p.inpainting_mask_invert, p.resize_mode = ORIGINAL, False, 0, 0
        p.do_not_save_samples = True  # the grown pictures are saved, not the windows
        batches, batch_size, seed = p.n_iter, p.batch_size, p.seed
        p.n_iter = 1
        images: list[Image.Image] = []
        seeds: list[int] = []
        first_info, interrupted = "", False
        for batch in range(batches):
            p.seed = seed + batch * batch_size
            pictures = [source] * batch_size
            for side in outpaint.DIRECTIONS:
                if margins.amount(side) == 0:
                    continue
                step = grow(pictures, side, margins.amount(side), blur, falloff, variation, work_size)
                p.width, p.height = step.mask.size
                p.init_images, p.mask, p.batch_size = step.crops(), step.mask, len(pictures)
                processed = api.process_images(p)
                if processed.interrupted or len(processed.images) < len(pictures):
                    interrupted = True
                    break
                first_info = first_info or processed.infotexts[0]
                pictures = step.finish(processed.images)
            if interrupted:
                break
            images += pictures
            seeds += [p.seed + index for index in range(len(pictures))]
        paths = [path for image, s in zip(images, seeds) if (path := api.save_image(p, image, first_info, s))]
        infotexts = [first_info] * len(images)
        if len(images) > 1:
            grid = api.image_grid(images, cols=math.ceil(math.sqrt(len(images))))
            grid_path = api.save_grid(p, grid, first_info, seeds[0])
            images, infotexts, seeds = [grid, *images], [first_info, *infotexts], [seeds[0], *seeds]
            paths = [grid_path, *paths] if grid_path else paths
        return api.Processed(
            p, images, infotexts=infotexts, seeds=seeds, paths=paths, interrupted=interrupted
        )
