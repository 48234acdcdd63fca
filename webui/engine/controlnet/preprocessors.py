"""ControlNet preprocessors ("modules"): image → control map, with sd-webui-controlnet's names and sliders.

`processor_res` is the short side the image is processed at (padded to a multiple of 64 with its edge
pixels, the padding cut off again); `threshold_a`/`threshold_b` mean what the module's sliders say
(canny: low/high threshold). -1 means "the slider's default"; a slider the module lacks stays -1 (and is
left out of the infotext). The map is then fitted to the output size with the unit's resize mode.

Modules without weights (none, canny, invert, threshold, blur, tile, shuffle, lineart_standard,
scribble_xdog) work offline out of the box. The others run controlnet-aux's detectors on annotator
weights (engine.controlnet.annotators: where they are looked up, and the errors naming what is missing).
What each module computes is in engine.controlnet.detectors, the image handling around it in
engine.controlnet.image_fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from PIL import Image

from webui.core import image_limits
from webui.core.control_unit import ControlUnit, control_resize_mode_name
from webui.core.errors import InvalidParameter
from webui.engine.controlnet import annotators as known
from webui.engine.controlnet import detectors as D
from webui.engine.controlnet import image_fit
from webui.engine.controlnet.annotators import Annotator, Annotators


@dataclass(frozen=True)
class Slider:
    label: str
    default: float
    minimum: float
    maximum: float
    step: float = 1.0


RESOLUTION = Slider("Preprocessor Resolution", 512, 64, 2048)


@dataclass(frozen=True)
class Preprocessor:
    name: str  # sd-webui-controlnet's module key, what the API sends
    run: D.Run
    alias: str | None = None  # the name its UI shows, accepted too
    resolution: Slider | None = RESOLUTION
    threshold_a: Slider | None = None
    threshold_b: Slider | None = None
    annotator: Annotator | None = None

    @property
    def label(self) -> str:
        return self.alias or self.name


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
    run = D.weighted_detector(name, annotator, aux_module, cls, files, threshold_args, call)
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
    Preprocessor("none", D.unchanged, resolution=None),
    Preprocessor("invert", D.invert, "invert (from white bg & black line)", resolution=None),
    Preprocessor(
        "canny",
        D.padded(D.canny),
        threshold_a=Slider("Canny Low Threshold", 100, 1, 255),
        threshold_b=Slider("Canny High Threshold", 200, 1, 255),
    ),
    Preprocessor(
        "threshold", D.padded(D.threshold), threshold_a=Slider("Binarization Threshold", 127, 0, 255)
    ),
    Preprocessor("blur_gaussian", D.padded(D.blur), threshold_a=Slider("Sigma", 9.0, 0.01, 64.0, 0.01)),
    Preprocessor(
        "tile_resample",
        D.tile,
        resolution=None,
        threshold_a=Slider("Down Sampling Rate", 1.0, 1.0, 8.0, 0.01),
    ),
    Preprocessor("shuffle", D.padded(D.shuffle)),
    Preprocessor(
        "lineart_standard", D.padded(D.lineart_standard), "lineart_standard (from white bg & black line)"
    ),
    Preprocessor("scribble_xdog", D.padded(D.scribble_xdog), threshold_a=Slider("XDoG Threshold", 32, 1, 64)),
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


def resolve(unit: ControlUnit, image_size: tuple[int, int], size: tuple[int, int]) -> ControlUnit:
    """The unit with the values it runs with: slider defaults for -1, -1 for sliders the module lacks,
    the pixel-perfect resolution when asked for, the resize mode as its label."""
    pre = find(unit.module)
    resolution = unit.processor_res
    if pre.resolution and unit.pixel_perfect:
        resolution = image_fit.pixel_perfect_resolution(image_size, size, unit.resize_mode)
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
    if pre.resolution:  # bounded before any array of that size exists (a 64x1 image at 2048: 131072x2048)
        image_limits.scaled_to_short_side(image_size, processor_res, f"ControlNet {pre.name} processing size")
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
        image_fit.to_array(image),
        resolved.processor_res,
        resolved.threshold_a,
        resolved.threshold_b,
        annotators,
    )
    return Image.fromarray(image_fit.rgb(result))


def control_map(
    unit: ControlUnit, image: Image.Image, size: tuple[int, int], annotators: Annotators
) -> tuple[Image.Image, ControlUnit]:
    """The unit's control map at the output (width, height) `size`, and the unit as it ran (resolve())."""
    used = resolve(unit, image.size, size)
    pre = find(unit.module)
    result = pre.run(
        image_fit.to_array(image), used.processor_res, used.threshold_a, used.threshold_b, annotators
    )
    return Image.fromarray(image_fit.fit(image_fit.rgb(result), size, used.resize_mode)), used
