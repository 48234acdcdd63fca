"""ControlNet preprocessors ("modules"): image → control map, with sd-webui-controlnet's names and sliders.

`processor_res` is the short side the image is processed at (padded to a multiple of 64 with its edge
pixels, the padding cut off again); `threshold_a`/`threshold_b` mean what the module's sliders say
(canny: low/high threshold). -1 means "the slider's default"; a slider the module lacks stays -1 (and is
left out of the infotext). The map is then fitted to the output size with the unit's resize mode.

Modules without weights (none, canny, invert, threshold, blur, tile, shuffle, lineart_standard,
scribble_xdog) work offline out of the box. The others run controlnet-aux's detectors on annotator
weights (engine.annotators: where they are looked up, and the errors naming what is missing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np
from PIL import Image

from webui.core.errors import InvalidParameter
from webui.core.params import CONTROL_RESIZE_MODES, ControlUnit, control_resize_mode_name
from webui.engine.controlnet import annotators as known
from webui.engine.controlnet.annotators import Annotator, Annotators, import_aux

JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL = CONTROL_RESIZE_MODES
SHUFFLE_SEED = 0  # the shuffle is random in sd-webui-controlnet; fixed here so an infotext reproduces


@dataclass(frozen=True)
class Slider:
    label: str
    default: float
    minimum: float
    maximum: float
    step: float = 1.0


RESOLUTION = Slider("Preprocessor Resolution", 512, 64, 2048)


Array = np.ndarray
Run = Callable[[Array, int, float, float, "Annotators"], Array]


@dataclass(frozen=True)
class Preprocessor:
    name: str  # sd-webui-controlnet's module key, what the API sends
    run: Run
    alias: str | None = None  # the name its UI shows, accepted too
    resolution: Slider | None = RESOLUTION
    threshold_a: Slider | None = None
    threshold_b: Slider | None = None
    annotator: Annotator | None = None

    @property
    def label(self) -> str:
        return self.alias or self.name

    def sliders(self) -> list[dict[str, Any] | None]:
        """sd-webui-controlnet's module_detail "sliders" (None for a hidden resolution slider)."""
        shown = [self.resolution, self.threshold_a, self.threshold_b]
        while shown and shown[-1] is None:
            shown.pop()
        return [
            None
            if s is None
            else {"name": s.label, "value": s.default, "min": s.minimum, "max": s.maximum, "step": s.step}
            for s in shown
        ]


# --- helpers --------------------------------------------------------------------------------------


def to_array(image: Image.Image) -> Array:
    """The image as HxWx3 uint8 RGB (transparency composited over white)."""
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    return _rgb(np.asarray(image.convert("RGBA" if has_alpha else "RGB")))


def _rgb(image: Array) -> Array:
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


def _resize(image: Array, width: int, height: int) -> Array:
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
    return _rgb(resized)


def at_resolution(image: Array, resolution: int) -> tuple[Array, Callable[[Array], Array]]:
    """The image with its short side at `resolution`, padded (edge pixels) to multiples of 64, and the
    function that cuts a result of the padded image back to the unpadded size."""
    height, width = image.shape[:2]
    k = resolution / min(height, width)
    h, w = round(height * k), round(width * k)
    scaled = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
    padded = np.pad(_rgb(scaled), [[0, -h % 64], [0, -w % 64], [0, 0]], mode="edge")
    return np.ascontiguousarray(padded), lambda result: np.ascontiguousarray(_rgb(result)[:h, :w])


def _aux(module: str, cls: str, **kwargs: Any) -> Callable[[Array], Array]:
    """Run a weight-free controlnet-aux detector at the image's own (already prepared) size."""

    def run(image: Array) -> Array:
        side = min(image.shape[:2])
        detector = getattr(import_aux(module), cls)()
        return detector(image, detect_resolution=side, output_type="np", **kwargs)

    return run


def _padded(compute: Callable[[Array, float, float], Array]) -> Run:
    """A module that works on the image at processor_res (padded), as sd-webui-controlnet's do."""

    def run(image: Array, resolution: int, a: float, b: float, annotators: Annotators) -> Array:
        padded, unpad = at_resolution(image, resolution)
        return unpad(compute(padded, a, b))

    return run


# --- weight-free modules --------------------------------------------------------------------------


def _none(image: Array, resolution: int, a: float, b: float, annotators: Annotators) -> Array:
    return image


def _invert(image: Array, resolution: int, a: float, b: float, annotators: Annotators) -> Array:
    return 255 - image


def _canny(image: Array, low: float, high: float) -> Array:
    return _aux(
        "canny",
        "CannyDetector",
        low_threshold=int(low),
        high_threshold=int(high),
        image_resolution=min(image.shape[:2]),
    )(image)


def _threshold(image: Array, level: float, _: float) -> Array:
    return np.where(image.min(axis=2, keepdims=True) > level, 255, 0).astype(np.uint8).repeat(3, axis=2)


def _blur(image: Array, sigma: float, _: float) -> Array:
    return cv2.GaussianBlur(image, (0, 0), float(sigma))


def _tile(image: Array, resolution: int, rate: float, b: float, annotators: Annotators) -> Array:
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


def _shuffle(image: Array, a: float, b: float) -> Array:
    """Content shuffle: the image warped by a smooth random flow (controlnet-aux's algorithm, seeded)."""
    height, width = image.shape[:2]
    rng = np.random.default_rng(SHUFFLE_SEED)
    x = (_noise_disk(rng, height, width, 256) * (width - 1)).astype(np.float32)
    y = (_noise_disk(rng, height, width, 256) * (height - 1)).astype(np.float32)
    return cv2.remap(image, x, y, cv2.INTER_LINEAR)


def _lineart_standard(image: Array, a: float, b: float) -> Array:
    return _aux("lineart_standard", "LineartStandardDetector")(image)


def _scribble_xdog(image: Array, level: float, _: float) -> Array:
    fine = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.5)
    coarse = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 5.0)
    dog = (255 - np.min(coarse - fine, axis=2)).clip(0, 255)
    return np.where(2 * (255 - dog) > level, 255, 0).astype(np.uint8)[:, :, None].repeat(3, axis=2)


# --- modules with annotator weights ---------------------------------------------------------------


def _detector_module(
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
        padded, unpad = at_resolution(image, resolution)
        side = min(padded.shape[:2])
        thresholds = dict(zip(threshold_args, (a, b))) if threshold_args else {}
        result = detector(
            padded, detect_resolution=side, image_resolution=side, output_type="np", **call, **thresholds
        )
        return unpad(result)

    return run


def _weighted(
    name: str,
    annotator: Annotator,
    aux_module: str,
    cls: str,
    alias: str | None = None,
    files: Mapping[str, str] | None = None,
    sliders: tuple[Slider, Slider] | None = None,
    threshold_args: tuple[str, str] | None = None,
    **call: Any,
) -> Preprocessor:
    """A module running controlnet-aux's `cls`; `files`: its from_pretrained file arguments (default: the
    annotator's one file as `filename`)."""
    files = files if files is not None else {"filename": annotator.files[0]}
    run = _detector_module(name, annotator, aux_module, cls, files, threshold_args, call)
    a, b = sliders or (None, None)
    return Preprocessor(name, run, alias, threshold_a=a, threshold_b=b, annotator=annotator)


def _openpose(name: str, body: bool, hand: bool, face: bool) -> Preprocessor:
    files = dict(zip(("filename", "hand_filename", "face_filename"), known.OPENPOSE.files))
    call = {"include_body": body, "include_hand": hand, "include_face": face}
    return _weighted(name, known.OPENPOSE, "open_pose", "OpenposeDetector", files=files, **call)


def _leres(name: str, boost: bool) -> Preprocessor:
    files = {"filename": "res101.pth", "pix2pix_filename": "latest_net_G.pth"}
    sliders = (Slider("Remove Near %", 0, 0, 100, 0.1), Slider("Remove Background %", 0, 0, 100, 0.1))
    return _weighted(
        name, known.LERES, "leres", "LeresDetector", None, files, sliders, ("thr_a", "thr_b"), boost=boost
    )


_LINEART_FILES = {"filename": "sk_model.pth", "coarse_filename": "sk_model2.pth"}
_MLSD_SLIDERS = (
    Slider("MLSD Value Threshold", 0.1, 0.01, 2.0, 0.01),
    Slider("MLSD Distance Threshold", 0.1, 0.01, 20.0, 0.01),
)

_ALL = (
    Preprocessor("none", _none, resolution=None),
    Preprocessor("invert", _invert, "invert (from white bg & black line)", resolution=None),
    Preprocessor(
        "canny",
        _padded(_canny),
        threshold_a=Slider("Canny Low Threshold", 100, 1, 255),
        threshold_b=Slider("Canny High Threshold", 200, 1, 255),
    ),
    Preprocessor("threshold", _padded(_threshold), threshold_a=Slider("Binarization Threshold", 127, 0, 255)),
    Preprocessor("blur_gaussian", _padded(_blur), threshold_a=Slider("Sigma", 9.0, 0.01, 64.0, 0.01)),
    Preprocessor(
        "tile_resample", _tile, resolution=None, threshold_a=Slider("Down Sampling Rate", 1.0, 1.0, 8.0, 0.01)
    ),
    Preprocessor("shuffle", _padded(_shuffle)),
    Preprocessor(
        "lineart_standard", _padded(_lineart_standard), "lineart_standard (from white bg & black line)"
    ),
    Preprocessor("scribble_xdog", _padded(_scribble_xdog), threshold_a=Slider("XDoG Threshold", 32, 1, 64)),
    _weighted(
        "depth", known.MIDAS, "midas", "MidasDetector", "depth_midas",
        files={"model_type": "dpt_hybrid", "filename": known.MIDAS.files[0]},
    ),
    _weighted("depth_zoe", known.ZOE, "zoe", "ZoeDetector"),
    _leres("depth_leres", boost=False),
    _leres("depth_leres++", boost=True),
    _weighted("normal_bae", known.NORMAL_BAE, "normalbae", "NormalBaeDetector"),
    _openpose("openpose", body=True, hand=False, face=False),
    _openpose("openpose_hand", body=True, hand=True, face=False),
    _openpose("openpose_face", body=True, hand=False, face=True),
    _openpose("openpose_faceonly", body=False, hand=False, face=True),
    _openpose("openpose_full", body=True, hand=True, face=True),
    _weighted("hed", known.HED, "hed", "HEDdetector", "softedge_hed"),
    _weighted("hed_safe", known.HED, "hed", "HEDdetector", "softedge_hedsafe", safe=True),
    _weighted("scribble_hed", known.HED, "hed", "HEDdetector", scribble=True),
    _weighted("pidinet", known.PIDINET, "pidi", "PidiNetDetector", "softedge_pidinet"),
    _weighted("pidinet_safe", known.PIDINET, "pidi", "PidiNetDetector", "softedge_pidisafe", safe=True),
    _weighted(
        "pidinet_scribble", known.PIDINET, "pidi", "PidiNetDetector", "scribble_pidinet", scribble=True
    ),
    _weighted("lineart", known.LINEART, "lineart", "LineartDetector", "lineart_realistic", _LINEART_FILES),
    _weighted(
        "lineart_coarse", known.LINEART, "lineart", "LineartDetector", files=_LINEART_FILES, coarse=True
    ),
    _weighted("lineart_anime", known.LINEART_ANIME, "lineart_anime", "LineartAnimeDetector"),
    _weighted(
        "mlsd", known.MLSD, "mlsd", "MLSDdetector", sliders=_MLSD_SLIDERS, threshold_args=("thr_v", "thr_d")
    ),
)  # fmt: skip
PREPROCESSORS: Mapping[str, Preprocessor] = MappingProxyType({p.name: p for p in _ALL})
_BY_ALIAS = MappingProxyType({p.alias: p for p in _ALL if p.alias})


def module_list(alias_names: bool = False) -> list[str]:
    """The module names (or the names the UI shows), in table order ("none" first)."""
    return [p.label if alias_names else p.name for p in _ALL]


def find(module: str) -> Preprocessor:
    found = PREPROCESSORS.get(module) or _BY_ALIAS.get(module)
    if found is None:
        raise InvalidParameter(
            f"Unknown ControlNet preprocessor {module!r}; known: {', '.join(module_list())}"
        )
    return found


# --- sizes and the whole unit ---------------------------------------------------------------------


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
        return _resize(image, width, height)
    image_h, image_w = image.shape[:2]
    pick = max if mode == CROP_AND_RESIZE else min
    k = pick(width / image_w, height / image_h)
    new_w, new_h = max(1, round(image_w * k)), max(1, round(image_h * k))
    scaled = _resize(image, new_w, new_h)
    if mode == CROP_AND_RESIZE:
        top, left = (new_h - height) // 2, (new_w - width) // 2
        return np.ascontiguousarray(scaled[top : top + height, left : left + width])
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = np.median(border, axis=0).astype(np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = scaled
    return canvas


def resolve(unit: ControlUnit, image_size: tuple[int, int], size: tuple[int, int]) -> ControlUnit:
    """The unit with the values it runs with: slider defaults for -1, -1 for sliders the module lacks,
    the pixel-perfect resolution when asked for, the resize mode as its label."""
    pre = find(unit.module)
    resolution = unit.processor_res
    if pre.resolution and unit.pixel_perfect:
        resolution = pixel_perfect_resolution(image_size, size, unit.resize_mode)
    values = {}
    for name, slider, value in (
        ("processor_res", pre.resolution, resolution),
        ("threshold_a", pre.threshold_a, unit.threshold_a),
        ("threshold_b", pre.threshold_b, unit.threshold_b),
    ):
        if slider is None:
            values[name] = -1
        elif value == -1:
            values[name] = slider.default
        elif not slider.minimum <= value <= slider.maximum:
            limits = f"between {slider.minimum} and {slider.maximum}, got {value}"
            raise InvalidParameter(f"ControlNet {pre.name}: {slider.label} ({name}) must be {limits}")
        else:
            values[name] = value
    processor_res = int(values.pop("processor_res"))
    return unit.replace(
        processor_res=processor_res,
        threshold_a=float(values["threshold_a"]),
        threshold_b=float(values["threshold_b"]),
        resize_mode=control_resize_mode_name(unit.resize_mode),
    )


def detect(
    module: str,
    image: Image.Image,
    processor_res: int,
    threshold_a: float,
    threshold_b: float,
    annotators: Annotators,
) -> Image.Image:
    """The module's map of `image` at the processing resolution (the preview, the API's /detect)."""
    pre = find(module)
    resolved = resolve(
        ControlUnit(
            module=module, processor_res=processor_res, threshold_a=threshold_a, threshold_b=threshold_b
        ),
        image.size,
        image.size,
    )
    result = pre.run(
        to_array(image), resolved.processor_res, resolved.threshold_a, resolved.threshold_b, annotators
    )
    return Image.fromarray(_rgb(result))


def control_map(
    unit: ControlUnit, image: Image.Image, size: tuple[int, int], annotators: Annotators
) -> tuple[Image.Image, ControlUnit]:
    """The unit's control map at the output (width, height) `size`, and the unit as it ran (resolve())."""
    used = resolve(unit, image.size, size)
    pre = find(unit.module)
    result = pre.run(to_array(image), used.processor_res, used.threshold_a, used.threshold_b, annotators)
    return Image.fromarray(fit(_rgb(result), size, used.resize_mode)), used
