"""Face restoration without downloaded weights: the alignment and paste-back math on synthetic landmarks,
random-weight GFPGAN (and CodeFormer, when the optional package is installed) files in the published key
layouts detected by spandrel and run on a face-like picture, and the errors that name missing files.

The real YuNet ONNX file cannot be made offline: OpenCV's detector is run on a stand-in file in YuNet's
format whose outputs are constants (tests/upscaler_files.py), and the restorers, which take a detector
factory, are also handed a detector that reports a face at known landmarks."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy
import pytest
import torch
from PIL import Image, ImageDraw

from tests.upscaler_files import write_codeformer, write_gfpgan, write_yunet_standin
from webui.core.errors import InvalidParameter, ModelLoadError
from webui.engine.upscaling import face_align
from webui.engine.upscaling.face_detection import DETECTOR_FILE, Detection, YuNetDetector
from webui.engine.upscaling.faces import FaceRestorers, restore_face
from webui.engine.upscaling.loading import FACE_PURPOSES, load_model
from webui.engine.upscaling.spandrel_import import load_extra_arches

SIZE = 160
# A face about 30 px between the eyes in a SIZE² picture: the template shrunk and moved, slightly turned.
ANGLE, SCALE, SHIFT = math.radians(8), 0.24, numpy.array([20.0, 12.0], numpy.float32)


def _landmarks(angle: float = ANGLE, scale: float = SCALE, shift: numpy.ndarray = SHIFT) -> numpy.ndarray:
    rotation = numpy.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], numpy.float32
    )
    return (face_align.FFHQ_TEMPLATE @ rotation.T) * scale + shift


class FixedDetector:
    """Reports one face at the given landmarks (what a detector would find on the synthetic picture)."""

    def __init__(self, landmarks: numpy.ndarray) -> None:
        self.landmarks = landmarks

    def detect(self, image: numpy.ndarray) -> list[Detection]:
        return [Detection(self.landmarks, 0.99)]


def _face_picture() -> Image.Image:
    """A skin-coloured oval with dark eyes and mouth where the landmarks are, on a blue background."""
    image = Image.new("RGB", (SIZE, SIZE), (40, 90, 160))
    draw = ImageDraw.Draw(image)
    points = _landmarks()
    centre = points.mean(axis=0)
    draw.ellipse((centre[0] - 34, centre[1] - 46, centre[0] + 34, centre[1] + 40), fill=(222, 184, 150))
    for x, y in points[:2]:
        draw.ellipse((x - 4, y - 3, x + 4, y + 3), fill=(40, 30, 30))
    draw.line([tuple(points[3]), tuple(points[4])], fill=(150, 60, 60), width=3)
    return image


def _folders(root: Path) -> dict[str, Path]:
    return {"GFPGAN": root / "GFPGAN", "CodeFormer": root / "Codeformer"}


class Identity(torch.nn.Module):
    """A "restorer" that gives the crop back: what comes out of the pipeline must be the input again."""

    def forward(self, x: torch.Tensor, **_kwargs: object) -> tuple[torch.Tensor]:
        return (x,)


def test_alignment_puts_the_landmarks_on_the_template() -> None:
    points = _landmarks()
    matrix = face_align.alignment(points)
    mapped = cv2.transform(points[None], matrix)[0]
    assert numpy.abs(mapped - face_align.FFHQ_TEMPLATE).max() < 1e-3
    # The crop shows what was at each landmark at the template's place: a marker at the nose tip.
    image = numpy.zeros((SIZE, SIZE, 3), numpy.uint8)
    nose = points[2].round().astype(int)
    image[nose[1] - 1 : nose[1] + 2, nose[0] - 1 : nose[0] + 2] = 255
    crop = face_align.crop_face(image, matrix)
    ys, xs = numpy.nonzero(crop[:, :, 0] > 128)
    assert abs(xs.mean() - face_align.FFHQ_TEMPLATE[2, 0]) < 3
    assert abs(ys.mean() - face_align.FFHQ_TEMPLATE[2, 1]) < 3


def test_degenerate_landmarks_are_refused() -> None:
    with pytest.raises(ValueError, match="do not define an alignment"):
        face_align.alignment(numpy.zeros((5, 2), numpy.float32))


def test_paste_back_changes_only_the_face_and_blends_its_edge() -> None:
    image = numpy.asarray(_face_picture())
    matrix = face_align.alignment(_landmarks())
    grey = numpy.full((face_align.FACE_SIZE, face_align.FACE_SIZE, 3), 200, numpy.uint8)
    pasted = face_align.paste_face(image, grey, matrix)
    mask = face_align.paste_mask(matrix, SIZE, SIZE)
    centre = _landmarks()[2].round().astype(int)
    assert (pasted[centre[1], centre[0]] == 200).all()  # inside: the restored face
    assert mask[centre[1], centre[0]] == pytest.approx(1.0)
    outside = mask == 0
    assert outside.any() and (pasted[outside] == image[outside]).all()  # outside: untouched, exactly
    soft = (mask > 0.05) & (mask < 0.95)
    assert soft.sum() > 100  # a blended edge, not a hard seam
    assert mask.max() <= 1.0


def test_identity_restorer_gives_the_picture_back() -> None:
    """Crop, normalise to [-1, 1], restore, de-normalise, paste: with a restorer that changes nothing,
    the face comes back as it was (up to the two resamplings), colours in place."""
    image = numpy.asarray(_face_picture())
    result = restore_face(image, _landmarks(), Identity(), "GFPGAN", 0.5)
    mask = face_align.paste_mask(face_align.alignment(_landmarks()), SIZE, SIZE) > 0.99
    difference = numpy.abs(result.astype(int) - image.astype(int))[mask]
    assert difference.mean() < 3.0  # resampling blurs the eyes' edges a little, nothing else changes


def test_missing_files_are_named_with_their_folders(tmp_path: Path) -> None:
    restorers = FaceRestorers(_folders(tmp_path))
    with pytest.raises(InvalidParameter) as error:
        restorers.check(gfpgan=True, codeformer=False)
    message = str(error.value)
    assert f"GFPGANv1.4.pth in {tmp_path / 'GFPGAN'}" in message
    assert f"{DETECTOR_FILE} (OpenCV's YuNet) in {tmp_path / 'GFPGAN'}" in message
    restorers.check(gfpgan=False, codeformer=False)  # nothing asked, nothing missing


def test_codeformer_without_its_package_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import webui.engine.upscaling.faces as faces

    monkeypatch.setattr(faces, "_extra_installed", lambda: False)
    with pytest.raises(InvalidParameter, match="spandrel_extra_arches.*non-commercial"):
        FaceRestorers(_folders(tmp_path)).check(gfpgan=False, codeformer=True)


def test_opencv_reads_a_yunet_format_file_and_faces_map_back_to_the_picture(tmp_path: Path) -> None:
    """A picture larger than 640 px is searched at 640 px; the landmarks come back in its own pixels."""
    landmarks = _landmarks(scale=0.5, shift=numpy.array([100.0, 80.0], numpy.float32))
    path = write_yunet_standin(tmp_path / DETECTOR_FILE, 640, landmarks)
    (face,) = YuNetDetector(path).detect(numpy.zeros((1280, 1280, 3), numpy.uint8))
    assert face.score == pytest.approx(0.95)
    assert numpy.abs(face.landmarks - landmarks * 2).max() < 0.01
    assert face.eye_distance == pytest.approx(float(numpy.linalg.norm(landmarks[1] - landmarks[0])) * 2, 1e-3)


def test_a_file_that_is_not_a_yunet_model_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / DETECTOR_FILE
    path.write_bytes(b"not an onnx file")
    with pytest.raises(ModelLoadError, match=f"{DETECTOR_FILE}: not a YuNet face detector"):
        YuNetDetector(path)


@pytest.fixture(scope="module")
def gfpgan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    write_gfpgan(root / "GFPGAN" / "GFPGANv1.4.pth")
    (root / "GFPGAN" / DETECTOR_FILE).write_bytes(b"read by the test's detector factory only")
    return root


def test_spandrel_detects_the_gfpgan_layout(gfpgan_dir: Path) -> None:
    model = load_model(gfpgan_dir / "GFPGAN" / "GFPGANv1.4.pth", FACE_PURPOSES)
    assert (model.architecture.name, model.purpose, model.scale) == ("GFPGAN", "FaceSR", 1)


@pytest.mark.slow
def test_gfpgan_restores_the_face_and_leaves_the_rest(gfpgan_dir: Path) -> None:
    torch.set_num_threads(1)
    picture = _face_picture()
    restorers = FaceRestorers(_folders(gfpgan_dir), lambda path: FixedDetector(_landmarks()))
    restored = restorers.restore(picture, "GFPGAN", 1.0)
    before, after = numpy.asarray(picture).astype(int), numpy.asarray(restored).astype(int)
    mask = face_align.paste_mask(face_align.alignment(_landmarks()), SIZE, SIZE)
    assert numpy.abs(after - before)[mask > 0.99].mean() > 10  # random weights: the face is replaced
    assert (after[mask == 0] == before[mask == 0]).all()
    # Visibility blends over the original; equal only because a second run restores the same way
    # (GFPGAN's decoder noise is seeded).
    half = restorers.restore(picture, "GFPGAN", 0.5)
    assert half.tobytes() == Image.blend(picture, restored, 0.5).tobytes()


def test_tiny_faces_and_no_faces_leave_the_picture_alone(gfpgan_dir: Path) -> None:
    picture = _face_picture()
    tiny = _landmarks(scale=0.03)  # under 5 px between the eyes
    for detector in (FixedDetector(tiny), type("NoFaces", (), {"detect": lambda self, image: []})()):
        restorers = FaceRestorers(_folders(gfpgan_dir), lambda path, found=detector: found)
        assert restorers.restore(picture, "GFPGAN", 1.0).tobytes() == picture.tobytes()


# CodeFormer's architecture comes only from the optional package; tools/run_tests.py installs it
# (requirements-test-nodeps.txt), so CI runs these tests
EXTRA_ARCHES_MISSING = (
    "CodeFormer needs the optional spandrel_extra_arches package (requirements-test-nodeps.txt), "
    "which is not installed in this environment"
)


def test_a_gfpgan_file_is_not_taken_for_codeformer(gfpgan_dir: Path, tmp_path: Path) -> None:
    if load_extra_arches() is None:
        pytest.skip(EXTRA_ARCHES_MISSING)
    folders = {"GFPGAN": gfpgan_dir / "GFPGAN", "CodeFormer": tmp_path}
    (tmp_path / "codeformer-v0.1.0.pth").symlink_to(gfpgan_dir / "GFPGAN" / "GFPGANv1.4.pth")
    restorers = FaceRestorers(folders, lambda path: FixedDetector(_landmarks()))
    with pytest.raises(ModelLoadError, match="codeformer-v0.1.0.pth: a GFPGAN model, not CodeFormer"):
        restorers.restore(_face_picture(), "CodeFormer", 1.0)


@pytest.mark.slow
def test_codeformer_is_detected_and_gets_its_weight(tmp_path: Path) -> None:
    if load_extra_arches() is None:
        pytest.skip(EXTRA_ARCHES_MISSING)
    torch.set_num_threads(1)
    path = write_codeformer(tmp_path / "Codeformer" / "codeformer-v0.1.0.pth")
    model = load_model(path, FACE_PURPOSES, FaceRestorers(_folders(tmp_path))._registry())
    assert (model.architecture.name, model.purpose) == ("CodeFormer", "FaceSR")
    net = model.model.eval()
    # The fidelity weight reaches the feature fusion (spandrel's CodeFormer takes it as `weight`; a
    # misspelt keyword would be swallowed by its **kwargs and the default 0.5 used).
    seen: list[float] = []
    net.fuse_convs_dict["32"].register_forward_hook(lambda module, args, output: seen.append(args[2]))
    image = numpy.asarray(_face_picture())
    restored = restore_face(image, _landmarks(), net, "CodeFormer", 0.3)
    assert seen == [0.3]
    mask = face_align.paste_mask(face_align.alignment(_landmarks()), SIZE, SIZE)
    assert numpy.abs(restored.astype(int) - image.astype(int))[mask > 0.99].mean() > 10
