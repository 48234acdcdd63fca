"""Face restoration (GFPGAN, CodeFormer): where their files go, and what is missing to run them.

The restorer networks load through spandrel (GFPGAN is in spandrel; CodeFormer in the optional,
non-commercial spandrel_extra_arches). Both need a face detector first: A1111 uses facexlib's RetinaFace
(`detection_Resnet50_Final.pth`) and its face parser (`parsing_parsenet.pth`), kept in models/GFPGAN.
facexlib builds RetinaFace on torchvision, which does not work beside this project's torch build (see
docs/upscalers.md), so until a detector is built without it every request names what is missing: the
files the user must place, then the detector itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PIL import Image

from webui.core.errors import InvalidParameter

# A1111's folder names under models/ and their flags.
FACE_FOLDERS: Mapping[str, tuple[str, str]] = {
    "GFPGAN": ("GFPGAN", "--gfpgan-models-path"),
    "CodeFormer": ("Codeformer", "--codeformer-models-path"),
}
# The file names A1111 downloads (it never does here: the user places them).
MODEL_FILES: Mapping[str, str] = {"GFPGAN": "GFPGANv1.4.pth", "CodeFormer": "codeformer-v0.1.0.pth"}
DETECTOR_FILES = ("detection_Resnet50_Final.pth", "parsing_parsenet.pth")


class FaceRestorers:
    """GFPGAN and CodeFormer over their folders (`folders`: restorer name → folder)."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        self._folders = dict(folders)

    def folders(self) -> dict[str, Path]:
        return dict(self._folders)

    def model_file(self, name: str) -> Path | None:
        """The restorer's weights: A1111's file name, else any .pth/.safetensors named after it."""
        folder = self._folders[name]
        exact = folder / MODEL_FILES[name]
        if exact.is_file():
            return exact
        found = sorted(folder.glob(f"{name.lower()}*")) if folder.is_dir() else []
        return next((p for p in found if p.suffix in (".pth", ".safetensors")), None)

    def check(self, gfpgan: bool, codeformer: bool) -> None:
        """InvalidParameter naming each file to place (and where) for the restorers asked for, or the
        missing face detector when the files are all there."""
        wanted = [name for name, on in (("GFPGAN", gfpgan), ("CodeFormer", codeformer)) if on]
        missing = [
            f"{MODEL_FILES[name]} in {self._folders[name]}"
            for name in wanted
            if self.model_file(name) is None
        ]
        detector_dir = self._folders["GFPGAN"]
        missing += [
            f"{file} in {detector_dir}" for file in DETECTOR_FILES if not (detector_dir / file).is_file()
        ]
        if missing:
            raise InvalidParameter(
                f"face restoration ({', '.join(wanted)}) needs these files, which are never downloaded "
                f"here: {'; '.join(missing)} (the detector files are facexlib's RetinaFace and ParseNet)"
            )
        raise InvalidParameter(
            "face restoration: the face detector (facexlib's RetinaFace) needs the torchvision package, "
            "which does not work beside this torch build; face restoration is not available yet"
        )

    def restore(
        self, image: Image.Image, model: str, visibility: float, weight: float = 0.5, *, device: object = None
    ) -> Image.Image:
        self.check(model == "GFPGAN", model == "CodeFormer")
        return image  # not reached: check() raises until the detector exists


def face_folders(models_dir: Path, flags: Mapping[str, object]) -> dict[str, Path]:
    """Each restorer's folder, its --*-models-path flag applied (`flags`: vars() of the parsed flags)."""
    from webui.engine.upscaling.catalog import folder_for

    return {
        name: folder_for(models_dir, folder, flag, flags) for name, (folder, flag) in FACE_FOLDERS.items()
    }
