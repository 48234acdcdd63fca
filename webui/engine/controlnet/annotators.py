"""Annotator weights of the ControlNet preprocessors that need them, and controlnet-aux's modules.

Weights are looked up under `<ControlNet folder>/annotators/<name>/` and then A1111's
`extensions/sd-webui-controlnet/annotator/downloads/<name>/`, with sd-webui-controlnet's file names; a
missing file or Python package is an error that names it. controlnet-aux modules are imported one by one
without the package `__init__`, which imports every detector and their optional dependencies
(torchvision, skimage, …) at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from webui.core.cmd_args import Paths
from webui.core.errors import ModelLoadError, ModelNotFound

A1111_DOWNLOADS = Path("extensions") / "sd-webui-controlnet" / "annotator" / "downloads"


@dataclass(frozen=True)
class Annotator:
    """Weights a module needs: a folder name (sd-webui-controlnet's downloads/<folder>), its files, and
    the Python packages (import name → pip name) its controlnet-aux detector imports."""

    folder: str
    files: tuple[str, ...]
    packages: Mapping[str, str] = field(default_factory=dict)


def import_aux(module: str) -> ModuleType:
    """controlnet_aux.<module> without running the package __init__ (see the module docstring)."""
    if "controlnet_aux" not in sys.modules:
        spec = importlib.util.find_spec("controlnet_aux")
        if spec is None:
            raise ModelLoadError(
                "controlnet-aux is not installed; install it with: pip install --no-deps controlnet-aux "
                "opencv-python-headless (see requirements-nodeps.txt)"
            )
        sys.modules["controlnet_aux"] = importlib.util.module_from_spec(spec)  # its code does not run
    try:
        return importlib.import_module(f"controlnet_aux.{module}")
    except ModuleNotFoundError as exc:
        raise ModelLoadError(
            f"controlnet-aux's {module} detector needs the Python package {exc.name!r}: install it"
        ) from None


_TORCHVISION = {"torchvision": "torchvision (a build matching your torch)"}


def annotator_dirs(paths: Paths) -> tuple[Path, ...]:
    """Where annotator weights are looked up: <ControlNet folder>/annotators, then A1111's downloads."""
    return (paths.controlnet_dir / "annotators", paths.data_dir / A1111_DOWNLOADS)


class Annotators:
    """Where annotator weights are looked up, and the detector loaded last (loading takes seconds)."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = tuple(dirs)
        self._loaded: tuple[tuple[str, str], Any] | None = None
        self._lock = threading.Lock()

    def folder(self, module: str, annotator: Annotator) -> Path:
        """The first folder holding all the annotator's files; ModelNotFound naming what is missing."""
        for base in self.dirs:
            if all((base / annotator.folder / name).is_file() for name in annotator.files):
                return base / annotator.folder
        folders = [base / annotator.folder for base in self.dirs] or [
            Path("models/ControlNet/annotators") / annotator.folder
        ]
        # the folder the user began to fill, else the first
        best = max(folders, key=lambda folder: sum((folder / name).is_file() for name in annotator.files))
        missing = [name for name in annotator.files if not (best / name).is_file()]
        others = [str(folder) for folder in folders if folder != best]
        message = (
            f"Preprocessor {module} needs the annotator file(s) {', '.join(missing)}: put them in {best}"
        )
        if others:
            message += f" (also looked in {', '.join(others)})"
        absent = _missing_packages(annotator)
        if absent:
            message += f". It also needs the Python package(s) {', '.join(absent)}, which are not installed"
        raise ModelNotFound(message)

    def detector(self, module: str, annotator: Annotator, aux_module: str, cls: str, **files: str) -> Any:
        folder = self.folder(module, annotator)
        absent = _missing_packages(annotator)
        if absent:
            raise ModelLoadError(
                f"Preprocessor {module} needs the Python package(s) {', '.join(absent)}: install them"
            )
        key = (str(folder), cls)
        with self._lock:
            if self._loaded is None or self._loaded[0] != key:
                self._loaded = None  # free the previous detector before loading the next
                detector = getattr(import_aux(aux_module), cls).from_pretrained(str(folder), **files)
                self._loaded = (key, detector)
            return self._loaded[1]


def _missing_packages(annotator: Annotator) -> list[str]:
    return [pip for name, pip in annotator.packages.items() if importlib.util.find_spec(name) is None]


MIDAS = Annotator(
    "midas", ("dpt_hybrid-midas-501f0c75.pt",), {"einops": "einops", "timm": "timm", **_TORCHVISION}
)
OPENPOSE = Annotator(
    "openpose",
    ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"),
    {"scipy": "scipy", "skimage": "scikit-image", "matplotlib": "matplotlib", **_TORCHVISION},
)
HED = Annotator("hed", ("ControlNetHED.pth",), {"einops": "einops"})
PIDINET = Annotator("pidinet", ("table5_pidinet.pth",), {"einops": "einops"})
LINEART = Annotator("lineart", ("sk_model.pth", "sk_model2.pth"), {"einops": "einops"})
LINEART_ANIME = Annotator("lineart_anime", ("netG.pth",), {"einops": "einops"})
MLSD = Annotator("mlsd", ("mlsd_large_512_fp32.pth",))
NORMAL_BAE = Annotator("normal_bae", ("scannet.pt",), {"einops": "einops", "timm": "timm", **_TORCHVISION})
ZOE = Annotator("zoedepth", ("ZoeD_M12_N.pt",), {"einops": "einops", "timm": "timm", **_TORCHVISION})
LERES = Annotator("leres", ("res101.pth", "latest_net_G.pth"), {"skimage": "scikit-image", **_TORCHVISION})
