"""Find faces and their five landmarks, for face restoration.

The detector is OpenCV's YuNet (`cv2.FaceDetectorYN`, MIT): one small ONNX file the user places,
`face_detection_yunet_2023mar.onnx`, run by the opencv-python-headless we already install. A1111 uses
facexlib's RetinaFace instead, which is built on torchvision (unusable beside our torch build); YuNet gives
the same five landmarks in the same order, which is all the alignment needs (docs/upscalers.md).

Any object with `detect(rgb) -> list[Detection]` can stand in for it (FaceRestorers takes a factory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy

from webui.core.errors import ModelLoadError

DETECTOR_FILE = "face_detection_yunet_2023mar.onnx"
DETECTOR_PATTERN = "face_detection_yunet*.onnx"  # other YuNet releases are read the same way
DETECT_SIDE = 640  # larger images are searched at this size (as A1111's detector does), faces mapped back
SCORE_THRESHOLD = 0.8


@dataclass(frozen=True)
class Detection:
    """One face: its five landmarks as (5, 2) pixel coordinates (x, y) in template order (the eye on the
    image's left, the other eye, the nose tip, the mouth corner on the image's left, the other) and the
    detector's confidence."""

    landmarks: numpy.ndarray
    score: float

    @property
    def eye_distance(self) -> float:
        return float(numpy.linalg.norm(self.landmarks[1] - self.landmarks[0]))


class FaceDetector(Protocol):
    def detect(self, image: numpy.ndarray) -> list[Detection]:
        """The faces of an RGB uint8 (height, width, 3) image, most confident first."""
        ...


DetectorFactory = Callable[[Path], FaceDetector]


def find_detector_file(folder: Path) -> Path | None:
    """The YuNet file in `folder`: the 2023mar release by name, else any `face_detection_yunet*.onnx`."""
    exact = folder / DETECTOR_FILE
    if exact.is_file():
        return exact
    found = sorted(folder.glob(DETECTOR_PATTERN)) if folder.is_dir() else []
    return found[0] if found else None


class YuNetDetector:
    """cv2.FaceDetectorYN over the ONNX file `path`."""

    def __init__(self, path: Path, score_threshold: float = SCORE_THRESHOLD) -> None:
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (DETECT_SIDE, DETECT_SIDE), score_threshold)
        except cv2.error as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise ModelLoadError(f"{path.name}: not a YuNet face detector ONNX file: {detail}") from None

    def detect(self, image: numpy.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        ratio = min(1.0, DETECT_SIDE / max(height, width))
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if ratio < 1 else image
        self._net.setInputSize(size)
        _, faces = self._net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))  # YuNet reads BGR
        if faces is None:
            return []
        found = [
            Detection(landmarks=row[4:14].reshape(5, 2).astype(numpy.float32) / ratio, score=float(row[14]))
            for row in faces
        ]
        return sorted(found, key=lambda face: -face.score)


def yunet(path: Path) -> FaceDetector:
    return YuNetDetector(path)
