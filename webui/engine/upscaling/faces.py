"""Face restoration (GFPGAN, CodeFormer): find the faces, restore each aligned crop, paste it back.

The restorer networks load through spandrel from files the user places (A1111's folders models/GFPGAN
and models/Codeformer): GFPGAN is in spandrel (Apache-2.0 code), CodeFormer in the optional
spandrel_extra_arches (its code is under a non-commercial licence; see docs/upscalers.md). The faces are
found by face_detection (OpenCV's YuNet, one ONNX file in the GFPGAN folder, where A1111 keeps its face
detector), aligned and pasted back by face_align. Nothing is ever downloaded: a missing file is an error
naming the file and the folder.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy
import torch
from PIL import Image

from webui.core.errors import InvalidParameter, ModelLoadError
from webui.engine.upscaling import face_align
from webui.engine.upscaling.face_detection import (
    DETECTOR_FILE,
    DetectorFactory,
    FaceDetector,
    find_detector_file,
    yunet,
)
from webui.engine.upscaling.loading import FACE_PURPOSES, MODEL_SUFFIXES, load_model
from webui.engine.upscaling.spandrel_import import load_extra_arches, load_spandrel

# A1111's restorers in the order of its /sdapi/v1/face-restorers, with their folder under models/ and flag.
FACE_FOLDERS: Mapping[str, tuple[str, str]] = {
    "CodeFormer": ("Codeformer", "--codeformer-models-path"),
    "GFPGAN": ("GFPGAN", "--gfpgan-models-path"),
}
# The file names A1111 downloads (it never does here: the user places them).
MODEL_FILES: Mapping[str, str] = {"GFPGAN": "GFPGANv1.4.pth", "CodeFormer": "codeformer-v0.1.0.pth"}
EXTRA_PACKAGE = "spandrel_extra_arches"
MIN_EYE_DISTANCE = 5.0  # pixels; smaller faces are left alone (A1111's detector threshold)
NOISE_SEED = 0  # GFPGAN's decoder draws noise: a fixed seed makes a restoration repeatable


def _extra_installed() -> bool:
    return importlib.util.find_spec(EXTRA_PACKAGE) is not None


def _restore_crop(net: Any, architecture: str, crop: torch.Tensor, weight: float) -> torch.Tensor:
    """One aligned face, (1, 3, 512, 512) in [-1, 1], through the restorer network."""
    if architecture == "CodeFormer":
        return net(crop, weight=weight)[0]  # CodeFormer's fidelity weight: 0 = strongest effect
    return net(crop, return_rgb=False)[0]


class FaceRestorers:
    """GFPGAN and CodeFormer over their folders (`folders`: restorer name → folder). The face detector's
    file is read from the GFPGAN folder by `detector_factory` (YuNet unless told otherwise). The last
    restorer and detector used stay loaded."""

    def __init__(self, folders: Mapping[str, Path], detector_factory: DetectorFactory = yunet) -> None:
        self._folders = {name: Path(folders[name]) for name in FACE_FOLDERS}
        self.detector_factory = detector_factory
        self._net: tuple[Path, int, str, Any] | None = None
        self._detector: tuple[Path, int, FaceDetector] | None = None
        self._lock = threading.Lock()  # the Extras and generation jobs run on one worker; tests may not

    def folders(self) -> dict[str, Path]:
        return dict(self._folders)

    def detector_folder(self) -> Path:
        return self._folders["GFPGAN"]

    def model_file(self, name: str) -> Path | None:
        """The restorer's weights: A1111's file name, else a .pth/.safetensors whose name contains the
        restorer's (A1111 takes GFPGAN files by that test too)."""
        folder = self._folders[name]
        exact = folder / MODEL_FILES[name]
        if exact.is_file():
            return exact
        found = sorted(folder.iterdir()) if folder.is_dir() else []
        return next(
            (p for p in found if p.suffix.lower() in MODEL_SUFFIXES and name.lower() in p.name.lower()), None
        )

    def unavailable(self, name: str) -> str | None:
        """Why `name` cannot run whatever files are placed, or None."""
        if name == "CodeFormer" and not _extra_installed():
            return (
                f"CodeFormer needs the optional package {EXTRA_PACKAGE} (its architectures are under "
                f"non-commercial licences): `.venv/bin/pip install --no-deps {EXTRA_PACKAGE}==0.2.0` "
                "if that licence fits your use, or use GFPGAN"
            )
        return None

    def check(self, gfpgan: bool, codeformer: bool) -> None:
        """InvalidParameter naming what is missing (package, model file, detector file, each with its
        folder) for the restorers asked for; nothing when they can run."""
        wanted = [name for name, on in (("GFPGAN", gfpgan), ("CodeFormer", codeformer)) if on]
        if not wanted:
            return
        reasons = [reason for name in wanted if (reason := self.unavailable(name))]
        missing = [
            f"{MODEL_FILES[name]} in {self._folders[name]}" for name in wanted if not self.model_file(name)
        ]
        if find_detector_file(self.detector_folder()) is None:
            missing.append(f"the face detector {DETECTOR_FILE} (OpenCV's YuNet) in {self.detector_folder()}")
        if missing:
            reasons.append(f"place these files (never downloaded here): {'; '.join(missing)}")
        if reasons:
            raise InvalidParameter(f"face restoration ({', '.join(wanted)}): {'. '.join(reasons)}")

    def _registry(self) -> Any:
        spandrel = load_spandrel()
        extra = load_extra_arches()
        if extra is None:
            return spandrel.MAIN_REGISTRY
        registry = spandrel.ArchRegistry()
        registry.add(*spandrel.MAIN_REGISTRY)
        registry.add(*extra.EXTRA_REGISTRY, ignore_duplicates=True)
        return registry

    def _load_net(self, name: str, device: torch.device) -> tuple[str, Any]:
        path = self.model_file(name)
        if path is None:
            raise InvalidParameter(f"face restoration: place {MODEL_FILES[name]} in {self._folders[name]}")
        mtime = path.stat().st_mtime_ns
        if self._net is None or self._net[:2] != (path, mtime):
            self._net = None  # free the previous model first
            descriptor = load_model(path, FACE_PURPOSES, self._registry())
            if descriptor.architecture.name != name:
                raise ModelLoadError(
                    f"{path.name}: a {descriptor.architecture.name} model, not {name}; "
                    f"put {name} weights in {self._folders[name]}"
                )
            self._net = (path, mtime, name, descriptor.model.eval())
        net = self._net[3].to(device=device, dtype=torch.float32)  # neither supports fp16 (spandrel)
        return self._net[2], net

    def detector(self) -> FaceDetector:
        path = find_detector_file(self.detector_folder())
        if path is None:
            raise InvalidParameter(
                f"face restoration needs the face detector {DETECTOR_FILE} (OpenCV's YuNet) in "
                f"{self.detector_folder()}; it is never downloaded here"
            )
        mtime = path.stat().st_mtime_ns
        if self._detector is None or self._detector[:2] != (path, mtime):
            self._detector = (path, mtime, self.detector_factory(path))
        return self._detector[2]

    def restore(
        self,
        image: Image.Image,
        model: str,
        visibility: float = 1.0,
        weight: float = 0.5,
        *,
        device: torch.device | None = None,
    ) -> Image.Image:
        """`image` with every face found restored by `model` ("GFPGAN" or "CodeFormer"), blended over the
        original by `visibility` (A1111's Extras sliders; 1 = the restored image). An image without
        faces comes back unchanged."""
        if model not in self._folders:
            raise InvalidParameter(f"unknown face restorer {model!r} (known: {', '.join(self._folders)})")
        self.check(model == "GFPGAN", model == "CodeFormer")
        rgb = numpy.asarray(image.convert("RGB"))
        with self._lock:
            faces = [face for face in self.detector().detect(rgb) if face.eye_distance >= MIN_EYE_DISTANCE]
            if not faces:
                return image.copy()
            architecture, net = self._load_net(model, device or torch.device("cpu"))
            restored = rgb
            for face in faces:
                restored = restore_face(restored, face.landmarks, net, architecture, weight, device)
        result = Image.fromarray(restored)
        if visibility < 1.0:
            result = Image.blend(image.convert("RGB"), result, visibility)
        return result.convert(image.mode) if image.mode != "RGB" else result


def restore_face(
    rgb: numpy.ndarray,
    landmarks: numpy.ndarray,
    net: Any,
    architecture: str,
    weight: float,
    device: torch.device | None = None,
) -> numpy.ndarray:
    """`rgb` (uint8) with the face at `landmarks` cut out aligned, restored by `net` and pasted back."""
    matrix = face_align.alignment(landmarks)
    crop = face_align.crop_face(rgb, matrix)
    device = device or torch.device("cpu")
    tensor = torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1.0)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
        torch.manual_seed(NOISE_SEED)
        output = _restore_crop(net, architecture, tensor.to(device), weight)
    face = output.squeeze(0).float().clamp(-1, 1).add(1).mul(127.5).round().byte()
    return face_align.paste_face(rgb, face.permute(1, 2, 0).cpu().numpy(), matrix)


def face_folders(models_dir: Path, flags: Mapping[str, object]) -> dict[str, Path]:
    """Each restorer's folder, its --*-models-path flag applied (`flags`: vars() of the parsed flags)."""
    from webui.engine.upscaling.catalog import folder_for

    return {
        name: folder_for(models_dir, folder, flag, flags) for name, (folder, flag) in FACE_FOLDERS.items()
    }
