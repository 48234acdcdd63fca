"""Issue 21 #1: no setting can make the server write, or gradio serve, files outside its data dir.
Folder options are relative paths inside the data dir (absolute, "~" and ".." refused, 422), gradio's
allowed_paths is the app's outputs folder only (not what a setting names), and --freeze-settings /
--hide-ui-dir-config lock settings as A1111's flags of those names do (403)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.security.servers import served

HOSTILE = ["/", "/etc", "~/x", "../outside", "outputs/../../outside", "C:\\Windows", "\\\\host\\share"]


@pytest.mark.parametrize("value", HOSTILE)
def test_folder_options_must_stay_inside_the_data_dir(tmp_path: Path, value: str) -> None:
    with served(tmp_path, "--nowebui") as (_, url, _):
        answer = requests.post(f"{url}/sdapi/v1/options", json={"outdir_img2img_samples": value}, timeout=30)
        assert answer.status_code == 422 and "inside the data dir" in answer.json()["detail"]
        options = requests.get(f"{url}/sdapi/v1/options", timeout=30).json()
        assert options["outdir_img2img_samples"] == "outputs/img2img-images"
        # nor for one job through override_settings (refused before it is queued)
        job = requests.post(
            f"{url}/sdapi/v1/txt2img",
            json={"prompt": "x", "override_settings": {"outdir_txt2img_samples": value}},
            timeout=30,
        )
        assert job.status_code == 422 and "inside the data dir" in job.json()["detail"]


def test_a_folder_inside_the_data_dir_is_accepted(tmp_path: Path) -> None:
    with served(tmp_path, "--nowebui") as (app, url, _):
        answer = requests.post(f"{url}/sdapi/v1/options", json={"outdir_samples": "my/images"}, timeout=30)
        assert answer.status_code == 200
        assert app.generation.output_dir("txt2img") == tmp_path / "my" / "images"


def test_gradio_serves_the_outputs_folder_only(tmp_path: Path) -> None:
    """The probe's attack: set an output folder, restart, read files through gradio's file route."""
    (tmp_path / "outputs" / "txt2img-images").mkdir(parents=True)
    (tmp_path / "outputs" / "txt2img-images" / "made.png").write_bytes(b"\x89PNG\r\n\x1a\nours")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "private.png").write_bytes(b"\x89PNG\r\n\x1a\nnot served")
    (tmp_path / "config.json").write_text(json.dumps({"outdir_img2img_samples": "elsewhere"}))
    with served(tmp_path, "--api") as (app, url, _):
        assert app.settings.get("outdir_img2img_samples") == "elsewhere"  # a valid setting, kept
        files = f"{url}/gradio_api/file="
        made = requests.get(files + str(tmp_path / "outputs" / "txt2img-images" / "made.png"), timeout=30)
        assert made.status_code == 200 and made.content.endswith(b"ours")
        for path in (tmp_path / "elsewhere" / "private.png", tmp_path / "config.json", Path("/etc/passwd")):
            refused = requests.get(files + str(path), timeout=30)
            assert refused.status_code in (403, 404), path
            assert b"not served" not in refused.content and b"root:" not in refused.content


def test_an_absolute_folder_in_config_json_is_not_taken(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"outdir_img2img_samples": "/"}))
    with served(tmp_path, "--api") as (app, url, _):
        assert app.settings.get("outdir_img2img_samples") == "outputs/img2img-images"
        assert app.generation.output_dir("img2img").is_relative_to(tmp_path)
        refused = requests.get(f"{url}/gradio_api/file=/etc/passwd", timeout=30)
        assert refused.status_code in (403, 404) and b"root:" not in refused.content


def test_freeze_settings_refuses_every_change(tmp_path: Path) -> None:
    with served(tmp_path, "--nowebui", "--freeze-settings") as (app, url, _):
        answer = requests.post(f"{url}/sdapi/v1/options", json={"samples_format": "jpg"}, timeout=30)
        assert answer.status_code == 403 and "--freeze-settings" in answer.json()["detail"]
        assert app.settings.get("samples_format") == "png"


def test_hide_ui_dir_config_refuses_folder_changes_only(tmp_path: Path) -> None:
    with served(tmp_path, "--nowebui", "--hide-ui-dir-config") as (app, url, _):
        folder = requests.post(f"{url}/sdapi/v1/options", json={"outdir_samples": "mine"}, timeout=30)
        assert folder.status_code == 403 and "outdir_samples" in folder.json()["detail"]
        other = requests.post(f"{url}/sdapi/v1/options", json={"samples_format": "jpg"}, timeout=30)
        assert other.status_code == 200 and app.settings.get("samples_format") == "jpg"
