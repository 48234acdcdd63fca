"""When generated images get their faces restored (A1111's restore_faces and the face_restoration options),
what is refused before queueing, and how the infotext key reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img
from webui.engine.upscaling.faces import FaceRestorers
from webui.services.face_restoration import FaceOptions, FaceRestorationService
from webui.services.settings import Settings


def _service(tmp_path: Path, restorers: FaceRestorers | None = None) -> FaceRestorationService:
    return FaceRestorationService(restorers, Settings(tmp_path / "config.json"))


def test_the_request_or_the_option_turns_it_on_and_model_none_off() -> None:
    asked, not_asked = Txt2Img(restore_faces=True), Txt2Img()
    assert FaceOptions(always=False, model="GFPGAN", weight=0.5).applies(asked)
    assert not FaceOptions(always=False, model="GFPGAN", weight=0.5).applies(not_asked)
    assert FaceOptions(always=True, model="CodeFormer", weight=0.5).applies(not_asked)
    assert not FaceOptions(always=True, model="None", weight=0.5).applies(asked)


def test_options_come_from_settings_and_overrides(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "config.json")
    assert FaceOptions.from_settings(settings) == FaceOptions(always=False, model="GFPGAN", weight=0.5)
    overrides = {"face_restoration_model": "CodeFormer", "code_former_weight": 0.2}
    assert FaceOptions.from_settings(settings, overrides) == FaceOptions(False, "CodeFormer", 0.2)


def test_missing_files_refuse_the_request_by_name(tmp_path: Path) -> None:
    folders = {"GFPGAN": tmp_path / "GFPGAN", "CodeFormer": tmp_path / "Codeformer"}
    service = _service(tmp_path, FaceRestorers(folders))
    service.check(Txt2Img())  # not asked: nothing needed
    service.check(Txt2Img(restore_faces=True), {"face_restoration_model": "None"})
    with pytest.raises(InvalidParameter, match=r"restore_faces: .*GFPGANv1\.4\.pth in .*GFPGAN"):
        service.check(Txt2Img(restore_faces=True))
    with pytest.raises(InvalidParameter, match=r"codeformer-v0\.1\.0\.pth in .*Codeformer"):
        service.check(Txt2Img(), {"face_restoration": True, "face_restoration_model": "CodeFormer"})


def test_without_restorers_the_request_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="Not supported here: restore_faces"):
        _service(tmp_path).check(Txt2Img(restore_faces=True))


@pytest.mark.parametrize(("line", "expected"), [("Face restoration: CodeFormer, ", True), ("", False)])
def test_pasted_infotext_ticks_restore_faces(line: str, expected: bool) -> None:
    text = f"a face\nSteps: 20, Sampler: Euler, Seed: 1, {line}Size: 64x64"
    values, problems = infotext.read_values(infotext.parse(text), Txt2Img)
    assert problems == {} and values["restore_faces"] is expected
