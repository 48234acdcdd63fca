"""Images in and out of ControlNet preprocessors: RGB arrays, the processing resolution (padded to
multiples of 64 and cut back), and fitting a map to the output size with the unit's resize mode.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from webui.core.control_unit import CONTROL_RESIZE_MODES, control_resize_mode_name

JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL = CONTROL_RESIZE_MODES

Array = np.ndarray


def to_array(image: Image.Image) -> Array:
    """The image as HxWx3 uint8 RGB (transparency composited over white)."""
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    return rgb(np.asarray(image.convert("RGBA" if has_alpha else "RGB")))


def rgb(image: Array) -> Array:
    """HxWx3 uint8 from grey, RGB or RGBA (alpha over white, as sd-webui-controlnet)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        return (
            (image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).clip(0, 255).astype(np.uint8)
        )
    return image


def resize(image: Array, width: int, height: int) -> Array:
    """Area when shrinking, cubic when enlarging; a two-valued map (edges) stays two-valued."""
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    shrink = width * height < image.shape[0] * image.shape[1]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    values = np.unique(image)
    if len(values) == 2:
        resized = np.where(resized > (int(values[0]) + int(values[1])) // 2, values[1], values[0]).astype(
            image.dtype
        )
    return rgb(resized)


def at_resolution(image: Array, resolution: int) -> tuple[Array, Callable[[Array], Array]]:
    """The image with its short side at `resolution`, padded (edge pixels) to multiples of 64, and the
    function that cuts a result of the padded image back to the unpadded size."""
    height, width = image.shape[:2]
    k = resolution / min(height, width)
    h, w = round(height * k), round(width * k)
    scaled = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
    padded = np.pad(rgb(scaled), [[0, -h % 64], [0, -w % 64], [0, 0]], mode="edge")
    return np.ascontiguousarray(padded), lambda result: np.ascontiguousarray(rgb(result)[:h, :w])


def pixel_perfect_resolution(image_size: tuple[int, int], size: tuple[int, int], resize_mode: str) -> int:
    """The processor_res at which the map's pixels meet the output's one to one (sd-webui-controlnet's
    rule): the short side scaled by how the image will be fitted to the (width, height) `size`."""
    (image_w, image_h), (width, height) = image_size, size
    scales = (height / image_h, width / image_w)
    k = min(scales) if control_resize_mode_name(resize_mode) == RESIZE_AND_FILL else max(scales)
    return round(k * min(image_w, image_h))


def fit(image: Array, size: tuple[int, int], resize_mode: str) -> Array:
    """The map at (width, height) `size`: stretched (Just Resize), scaled to cover and centre-cropped
    (Crop and Resize), or scaled to fit and centred on the median colour of its border (Resize and Fill)."""
    mode = control_resize_mode_name(resize_mode)
    width, height = size
    if mode == JUST_RESIZE:
        return resize(image, width, height)
    image_h, image_w = image.shape[:2]
    pick = max if mode == CROP_AND_RESIZE else min
    k = pick(width / image_w, height / image_h)
    new_w, new_h = max(1, round(image_w * k)), max(1, round(image_h * k))
    scaled = resize(image, new_w, new_h)
    if mode == CROP_AND_RESIZE:
        top, left = (new_h - height) // 2, (new_w - width) // 2
        return np.ascontiguousarray(scaled[top : top + height, left : left + width])
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = np.median(border, axis=0).astype(np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = scaled
    return canvas
