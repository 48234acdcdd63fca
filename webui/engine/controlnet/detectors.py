"""What each ControlNet preprocessor module computes: image array in, map array out.

The weight-free ones (unchanged, invert, canny, threshold, blur, tile, shuffle, lineart_standard,
scribble_xdog) work offline out of the box; weighted_detector runs a controlnet-aux detector on annotator
weights (engine.controlnet.annotators). engine.controlnet.preprocessors names them and sets their sliders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np

from webui.engine.controlnet import image_fit
from webui.engine.controlnet.annotators import Annotator, Annotators, import_aux

SHUFFLE_SEED = 0  # the shuffle is random in sd-webui-controlnet; fixed here so an infotext reproduces

Array = np.ndarray
# (image, processor_res, threshold_a, threshold_b, annotators) -> map
Run = Callable[[Array, int, float, float, Annotators], Array]


def _aux(module: str, cls: str, **kwargs: Any) -> Callable[[Array], Array]:
    """Run a weight-free controlnet-aux detector at the image's own (already prepared) size."""

    def run(image: Array) -> Array:
        side = min(image.shape[:2])
        detector = getattr(import_aux(module), cls)()
        return detector(image, detect_resolution=side, output_type="np", **kwargs)

    return run


def padded(compute: Callable[[Array, float, float], Array]) -> Run:
    """A module that works on the image at processor_res (padded), as sd-webui-controlnet's do."""

    def run(image: Array, resolution: int, a: float, b: float, annotators: Annotators) -> Array:
        padded, unpad = image_fit.at_resolution(image, resolution)
        return unpad(compute(padded, a, b))

    return run


def unchanged(image: Array, resolution: int, a: float, b: float, annotators: Annotators) -> Array:
    return image


def invert(image: Array, resolution: int, a: float, b: float, annotators: Annotators) -> Array:
    return 255 - image


def canny(image: Array, low: float, high: float) -> Array:
    return _aux(
        "canny",
        "CannyDetector",
        low_threshold=int(low),
        high_threshold=int(high),
        image_resolution=min(image.shape[:2]),
    )(image)


def threshold(image: Array, level: float, _: float) -> Array:
    return np.where(image.min(axis=2, keepdims=True) > level, 255, 0).astype(np.uint8).repeat(3, axis=2)


def blur(image: Array, sigma: float, _: float) -> Array:
    return cv2.GaussianBlur(image, (0, 0), float(sigma))


def tile(image: Array, resolution: int, rate: float, b: float, annotators: Annotators) -> Array:
    """Down-sample by `rate` (the model then adds the detail back); below 1.1 the image is kept."""
    if rate < 1.1:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (int(width / rate), int(height / rate)), interpolation=cv2.INTER_AREA)


def _noise_disk(rng: np.random.Generator, height: int, width: int, scale: int) -> Array:
    noise = rng.uniform(0, 1, size=(height // scale + 2, width // scale + 2))
    noise = cv2.resize(noise, (width + 2 * scale, height + 2 * scale), interpolation=cv2.INTER_CUBIC)
    noise = noise[scale : scale + height, scale : scale + width]
    noise -= noise.min()
    return noise / max(noise.max(), 1e-8)


def shuffle(image: Array, a: float, b: float) -> Array:
    """Content shuffle: the image warped by a smooth random flow (controlnet-aux's algorithm, seeded)."""
    height, width = image.shape[:2]
    rng = np.random.default_rng(SHUFFLE_SEED)
    x = (_noise_disk(rng, height, width, 256) * (width - 1)).astype(np.float32)
    y = (_noise_disk(rng, height, width, 256) * (height - 1)).astype(np.float32)
    return cv2.remap(image, x, y, cv2.INTER_LINEAR)


def lineart_standard(image: Array, a: float, b: float) -> Array:
    return _aux("lineart_standard", "LineartStandardDetector")(image)


def scribble_xdog(image: Array, level: float, _: float) -> Array:
    fine = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.5)
    coarse = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 5.0)
    dog = (255 - np.min(coarse - fine, axis=2)).clip(0, 255)
    return np.where(2 * (255 - dog) > level, 255, 0).astype(np.uint8)[:, :, None].repeat(3, axis=2)


def weighted_detector(
    name: str,
    annotator: Annotator,
    aux_module: str,
    cls: str,
    files: Mapping[str, str],
    threshold_args: tuple[str, str] | None,
    call: Mapping[str, Any],
) -> Run:
    """A module running controlnet-aux's `cls` on the padded image with the fixed arguments `call`;
    `threshold_args`: the detector's argument names for threshold_a and threshold_b, if it takes them."""

    def run(image: Array, resolution: int, a: float, b: float, annotators: Annotators) -> Array:
        detector = annotators.detector(name, annotator, aux_module, cls, **files)
        padded, unpad = image_fit.at_resolution(image, resolution)
        side = min(padded.shape[:2])
        thresholds = dict(zip(threshold_args, (a, b))) if threshold_args else {}
        result = detector(
            padded, detect_resolution=side, image_resolution=side, output_type="np", **call, **thresholds
        )
        return unpad(result)

    return run
