"""img2img and inpaint inputs prepared the way A1111 prepares them: pure PIL + numpy, no models.

- Input images become RGB: transparency is flattened onto white (A1111's default img2img background),
  16-bit greyscale is scaled to 8 bits, CMYK/palette/grey are converted. Oversized inputs are refused.
- The four resize modes ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent
  upscale)", the last one resized by the engine in latent space).
- Masks: white = repaint. An RGBA mask with real transparency uses its alpha (A1111's binary mask), any
  other mask its luminance; resized to the image, inverted for "Inpaint not masked", blurred with a
  Gaussian of sigma "Mask blur" cut at 2.5 sigma (as A1111's cv2 blur).
- "Only masked": the mask's bounding box plus padding, grown to the output's aspect ratio inside the image,
  is what gets generated; the result is scaled back and pasted into the full-size input.
- Paste-back: the output shows the input wherever the (blurred) mask is 0, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps
from scipy.ndimage import gaussian_filter1d

from webui.core.errors import InvalidParameter
from webui.core.params import RESIZE_MODES, Img2Img

MAX_INPUT_PIXELS = 2**25  # ~33.5 megapixels (e.g. 8192x4096): fill and paste-back work on full-size arrays
BACKGROUND = (255, 255, 255)  # what transparent input pixels become (A1111's img2img_background_color)
BLUR_TRUNCATE = 2.5  # the Gaussian's reach in sigmas: A1111's kernel is 2 * int(2.5 * sigma + 0.5) + 1 wide
JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL, LATENT_UPSCALE = range(len(RESIZE_MODES))

Box = tuple[int, int, int, int]  # left, top, right, bottom (PIL's crop box)


def check_size(image: Image.Image, what: str) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidParameter(f"The {what} is empty ({width}x{height} pixels)")
    if width * height > MAX_INPUT_PIXELS:
        raise InvalidParameter(
            f"The {what} is {width}x{height} ({width * height / 1e6:.1f} megapixels); the limit is "
            f"{MAX_INPUT_PIXELS / 1e6:.1f} megapixels: scale it down first"
        )


def _eight_bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit integer greyscale ("I;16", "I") scaled to "L"; PIL's own convert would clip at 255."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float64) / 257  # 65535 → 255
        return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
    return image


def to_rgb(image: Image.Image, what: str = "input image") -> Image.Image:
    """`image` as 8-bit RGB, transparent pixels composited onto white (A1111's img2img background)."""
    check_size(image, what)
    image = _eight_bit(image)
    if image.mode == "RGB":
        return image
    try:
        if image.has_transparency_data:
            layer = image.convert("RGBA")
            flat = Image.new("RGBA", image.size, BACKGROUND)
            flat.alpha_composite(layer)
            return flat.convert("RGB")
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InvalidParameter(f"The {what} (PIL mode {image.mode}) cannot be made RGB: {exc}") from None


def resize_image(image: Image.Image, mode: int, width: int, height: int) -> Image.Image:
    """A1111's resize modes. Crop and resize: scaled to cover, centre cropped. Resize and fill: scaled to
    fit, centred, the bands beside it filled by stretching its edge rows or columns. Latent upscale
    resizes the latents; an image (a mask) given here is just resized."""
    size = (width, height)
    if image.size == size:
        return image.copy()
    if mode == CROP_AND_RESIZE:
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    if mode != RESIZE_AND_FILL:
        return image.resize(size, Image.Resampling.LANCZOS)
    fitted = ImageOps.contain(image, size, Image.Resampling.LANCZOS)
    left, top = (width - fitted.width) // 2, (height - fitted.height) // 2
    pixels = np.asarray(fitted)
    bands = ((top, height - fitted.height - top), (left, width - fitted.width - left))
    filled = np.pad(pixels, bands + ((0, 0),) * (pixels.ndim - 2), mode="edge")
    return Image.fromarray(filled, fitted.mode)


def binary_mask(mask: Image.Image) -> Image.Image:
    """The mask as "L". A mask with real transparency (a painted layer) is its alpha, thresholded at half
    as A1111 does; otherwise its luminance, grey levels kept."""
    check_size(mask, "mask")
    mask = _eight_bit(mask)
    if mask.has_transparency_data:
        alpha = mask.convert("RGBA").getchannel("A")
        if alpha.getextrema() != (255, 255):
            return alpha.point(lambda value: 255 if value > 128 else 0)
    return mask.convert("L")


def blur_mask(mask: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur of an "L" mask, separable, reflected at the borders, cut at BLUR_TRUNCATE sigmas:
    a pixel further than int(2.5 * sigma + 0.5) from the mask stays 0."""
    if sigma <= 0:
        return mask.copy()
    values = np.asarray(mask, dtype=np.float32)
    for axis in (1, 0):
        values = gaussian_filter1d(values, sigma, axis=axis, mode="mirror", truncate=BLUR_TRUNCATE)
    return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")


def blur_reach(sigma: float) -> int:
    """How many pixels beyond the mask the blur reaches."""
    return int(BLUR_TRUNCATE * sigma + 0.5) if sigma > 0 else 0


def crop_region(mask: Image.Image, padding: int) -> Box | None:
    """The masked pixels' bounding box plus `padding` on each side, within the mask; None when empty."""
    box = mask.getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return (
        max(left - padding, 0),
        max(top - padding, 0),
        min(right + padding, mask.width),
        min(bottom + padding, mask.height),
    )


def expand_region(region: Box, width: int, height: int, image_size: tuple[int, int]) -> Box:
    """`region` grown evenly to the aspect ratio width:height, then moved inside the image (cut to it where
    the image is too small), so the crop scales to the output size without distortion."""
    left, top, right, bottom = region
    if (right - left) * height > (bottom - top) * width:  # wider than the output: grow the height
        top, bottom = _grow(top, bottom, int((right - left) * height / width), image_size[1])
    else:
        left, right = _grow(left, right, int((bottom - top) * width / height), image_size[0])
    return left, top, right, bottom


def _grow(start: int, end: int, length: int, limit: int) -> tuple[int, int]:
    extra = max(length - (end - start), 0)
    start, end = start - extra // 2, end + extra - extra // 2
    past_end = max(end - limit, 0)
    start, end = start - past_end, end - past_end
    if start < 0:
        start, end = 0, end - start
    return start, min(end, limit)


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """ "fill": the masked area painted with the colours around it, smoothly (coarse to fine), so the
    sampler starts from the surroundings instead of what was there. Unmasked pixels stay exactly.

    A pull-push fill: the known pixels (weighted by 1 - mask) are averaged down to one pixel, then each
    finer level keeps what it knows and takes the rest from the bilinearly enlarged coarser level."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    known = 1 - np.asarray(mask, dtype=np.float64) / 255
    if not known.any():
        return image.copy()  # everything is masked: no colour to take from
    levels = []
    colour, weight = rgb * known[..., None], known
    while colour.shape[0] > 1 or colour.shape[1] > 1:
        levels.append((colour, weight))
        colour, weight = _halve(colour), _halve(weight)
    filled = colour / weight[..., None]  # one pixel: the mean known colour
    for colour, weight in reversed(levels):
        filled = colour + _enlarge(filled, colour.shape[:2]) * (1 - weight[..., None])
    return Image.fromarray(np.clip(np.round(filled * 255), 0, 255).astype(np.uint8), "RGB")


def _halve(values: np.ndarray) -> np.ndarray:
    """2x2 means (an odd last row or column is repeated)."""
    height, width = values.shape[:2]
    values = np.pad(values, ((0, height % 2), (0, width % 2)) + ((0, 0),) * (values.ndim - 2), mode="edge")
    return (values[0::2, 0::2] + values[1::2, 0::2] + values[0::2, 1::2] + values[1::2, 1::2]) / 4


def _enlarge(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    size = (shape[1], shape[0])
    planes = [Image.fromarray(values[..., c].astype(np.float32), "F") for c in range(values.shape[2])]
    channels = [np.asarray(plane.resize(size, Image.Resampling.BILINEAR)) for plane in planes]
    return np.stack(channels, axis=-1).astype(np.float64)


def latent_mask(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The mask at latent `size` (width, height), rounded to 0/1: where latent noise / latent nothing
    replace the encoded image (A1111 rounds the same way)."""
    small = np.asarray(mask.resize(size, Image.Resampling.BICUBIC), dtype=np.float32) / 255
    return np.round(small)


def paste_back(
    original: Image.Image, generated: Image.Image, overlay: Image.Image, region: Box | None
) -> Image.Image:
    """`generated` shown through `overlay` (L, 255 = generated) over `original`; with `region` ("Only
    masked") it is first scaled (cropped to fit) into that box of the original."""
    below = generated
    if region is not None:
        left, top, right, bottom = region
        below = original.copy()
        fitted = ImageOps.fit(generated, (right - left, bottom - top), Image.Resampling.LANCZOS)
        below.paste(fitted, (left, top))
    alpha = np.asarray(overlay, dtype=np.float64)[..., None] / 255
    mixed = np.asarray(original, dtype=np.float64) * (1 - alpha) + np.asarray(below, dtype=np.float64) * alpha
    return Image.fromarray(np.round(mixed).astype(np.uint8), "RGB")


@dataclass(frozen=True)
class PreparedInput:
    """One img2img run's inputs, ready for the VAE, and what inpaint results are pasted back onto."""

    images: tuple[Image.Image, ...]  # RGB to encode: the output size (latent upscale: own size, /8)
    mask: Image.Image | None = None  # L at the output size: where the sampler repaints (blurred)
    originals: tuple[Image.Image, ...] = ()  # RGB: what each result is pasted onto (inpaint only)
    overlay: Image.Image | None = None  # L at the originals' size: how much of the result shows
    region: Box | None = None  # "Only masked": where in the original the result goes
    only_masked: bool = False  # "Only masked" was done (False when an empty mask made it plain img2img)
    warnings: tuple[str, ...] = ()

    def finish(self, index: int, generated: Image.Image) -> Image.Image:
        """Result `index` of a batch pasted back onto its input (unchanged without a mask)."""
        if self.overlay is None:
            return generated
        return paste_back(self.originals[index % len(self.originals)], generated, self.overlay, self.region)


def prepare(params: Img2Img, multiple: int = 8) -> PreparedInput:
    """The inputs of `params` as A1111 prepares them. `multiple`: the VAE's scale factor (latent upscale
    encodes the input at its own size, rounded down to it)."""
    images = [to_rgb(image, f"input image {i + 1}") for i, image in enumerate(params.init_images)]
    if params.mask is None:
        return PreparedInput(tuple(_resized(image, params, multiple) for image in images))
    mask = binary_mask(params.mask)
    if mask.size != images[0].size:
        mask = mask.resize(images[0].size, Image.Resampling.LANCZOS)
    if params.inpainting_mask_invert:
        mask = ImageOps.invert(mask)
    mask = blur_mask(mask, params.mask_blur)
    if params.inpaint_full_res:
        return _only_masked(params, images, mask, multiple)
    return _whole_picture(params, images, mask, multiple)


def _resized(image: Image.Image, params: Img2Img, multiple: int) -> Image.Image:
    if params.resize_mode != LATENT_UPSCALE:
        return resize_image(image, params.resize_mode, params.width, params.height)
    width, height = (max(side // multiple * multiple, multiple) for side in image.size)
    return resize_image(image, JUST_RESIZE, width, height)


def _whole_picture(
    params: Img2Img, images: list[Image.Image], mask: Image.Image, multiple: int
) -> PreparedInput:
    mode = JUST_RESIZE if params.resize_mode == LATENT_UPSCALE else params.resize_mode
    # all inputs share the mask: a differently sized input gets it just resized
    masks = [mask if image.size == mask.size else mask.resize(image.size) for image in images]
    sampler_mask = resize_image(mask, mode, params.width, params.height)
    originals = [resize_image(image, mode, params.width, params.height) for image in images]
    encoded = [_resized(image, params, multiple) for image in images]
    if params.inpainting_fill == 0:
        encoded = [fill_masked(image, resize_image(m, mode, *image.size)) for image, m in zip(encoded, masks)]
    # A1111 shows the result at twice the blurred mask's strength: the blur's inner half is fully repainted
    overlay = np.clip(np.asarray(sampler_mask, dtype=np.uint16) * 2, 0, 255).astype(np.uint8)
    warnings = () if mask.getbbox() else ("The mask is empty: nothing was repainted",)
    return PreparedInput(
        tuple(encoded), sampler_mask, tuple(originals), Image.fromarray(overlay, "L"), warnings=warnings
    )


def _only_masked(
    params: Img2Img, images: list[Image.Image], mask: Image.Image, multiple: int
) -> PreparedInput:
    region = crop_region(mask, params.inpaint_full_res_padding)
    if region is None:  # as A1111: nothing to crop to, so plain img2img of the whole input
        plain = tuple(_resized(image, params, multiple) for image in images)
        return PreparedInput(plain, warnings=('The mask is empty: "Only masked" did plain img2img instead',))
    if any(image.size != mask.size for image in images):
        raise InvalidParameter('"Only masked" needs all input images the same size')
    size = (params.width, params.height)
    region = expand_region(region, *size, mask.size)
    sampler_mask = resize_image(mask.crop(region), RESIZE_AND_FILL, *size)
    crops = [resize_image(image.crop(region), RESIZE_AND_FILL, *size) for image in images]
    if params.inpainting_fill == 0:
        crops = [fill_masked(crop, sampler_mask) for crop in crops]
    return PreparedInput(tuple(crops), sampler_mask, tuple(images), mask, region, only_masked=True)


def batch_size_for(params: Img2Img) -> int:
    """One input image serves the whole batch; several make the batch (at most batch_size, as A1111)."""
    count = len(params.init_images)
    if count > params.batch_size:
        batch = params.batch_size
        raise InvalidParameter(f"{count} input images but a batch size of {batch}: raise the batch size")
    return params.batch_size if count == 1 else count
