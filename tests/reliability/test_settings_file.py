"""config.json that is damaged, wrongly typed, or left half-written by a kill (issue 21, items 14 and 15)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import make_app, make_data_dir
from webui.services.settings import STALE_TEMP_AGE_S, Settings

ROOT = Path(__file__).resolve().parents[2]


def bad_copies(folder: Path) -> list[Path]:
    return sorted(folder.glob("config.json.bad-*"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "cannot be read as JSON"),
        ('{"samples_format": "jpg"', "cannot be read as JSON"),  # cut off mid-write
        (b"\xff\xfe{}", "cannot be read as JSON"),
        ("[1, 2]", "holds a JSON list, not an object"),
        ("null", "holds a JSON NoneType"),
    ],
)
def test_unreadable_file_starts_with_defaults_and_is_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | bytes, problem: str
) -> None:
    path = tmp_path / "config.json"
    raw = content if isinstance(content, bytes) else content.encode()
    path.write_bytes(raw)
    with caplog.at_level(logging.WARNING, logger="webui.services.settings"):
        settings = Settings(path)
    assert settings.as_dict() == Settings(tmp_path / "fresh.json").as_dict()  # all defaults
    [kept] = bad_copies(tmp_path)
    assert kept.read_bytes() == raw
    assert not path.exists()
    warning = settings.load_warning
    assert warning is not None and problem in warning and str(path) in warning and kept.name in warning
    assert "default settings" in warning
    assert [record.getMessage() for record in caplog.records] == [warning]
    assert "\n" not in warning
    # The warning comes once: the next start finds no file and says nothing.
    assert Settings(path).load_warning is None and bad_copies(tmp_path) == [kept]


def test_wrongly_typed_options_take_their_defaults_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    original = {
        "samples_format": "jpg",
        "sd_checkpoints_limit": "many",
        "jpeg_quality": 500,
        "a1111_key": [1],
    }
    path.write_text(json.dumps(original), encoding="utf-8")
    settings = Settings(path)
    assert settings.get("samples_format") == "jpg"
    assert settings.get("sd_checkpoints_limit") == 1 and settings.get("jpeg_quality") == 80  # defaults
    warning = settings.load_warning
    assert warning is not None
    assert "sd_checkpoints_limit must be int" in warning and "jpeg_quality must be between" in warning
    [kept] = bad_copies(tmp_path)
    assert json.loads(kept.read_text(encoding="utf-8")) == original
    repaired = json.loads(path.read_text(encoding="utf-8"))
    assert repaired["samples_format"] == "jpg" and repaired["sd_checkpoints_limit"] == 1
    assert repaired["a1111_key"] == [1]  # keys of other programs survive
    assert Settings(path).load_warning is None


def test_a_good_file_gives_no_warning_and_is_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"samples_format": "webp"}', encoding="utf-8")
    settings = Settings(path)
    assert settings.load_warning is None and settings.get("samples_format") == "webp"
    assert bad_copies(tmp_path) == []


def test_server_starts_and_serves_defaults_over_a_damaged_config(tmp_path: Path, tiny_sd1_file: Path) -> None:
    from webui.app import serve_in_thread

    data_dir = make_data_dir(tmp_path / "data", tiny_sd1_file)
    (data_dir / "config.json").write_text(
        '{"samples_format": "jpg", "jpeg_quality": "high"', encoding="utf-8"
    )
    app = make_app(data_dir, "--api")
    server, thread = serve_in_thread(app)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        options = requests.get(f"http://127.0.0.1:{port}/sdapi/v1/options", timeout=30)
        assert options.status_code == 200
        assert options.json()["samples_format"] == "png" and options.json()["jpeg_quality"] == 80
        assert app.settings.load_warning is not None and "config.json" in app.settings.load_warning
        assert len(bad_copies(data_dir)) == 1
    finally:
        server.should_exit = True
        thread.join(10)
        app.jobs.stop()


# --- writes interrupted by kills ---------------------------------------------------------------------

WRITER = """
import sys
from webui.services.settings import Settings

settings = Settings(sys.argv[1])
formats = ["png", "jpg", "webp"]
print("ready", flush=True)
i = 0
while True:
    i += 1
    settings.update({"samples_format": formats[i % 3], "jpeg_quality": 1 + i % 100})
"""


def kill_a_busy_writer(path: Path, after_s: float) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        time.sleep(after_s)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".config.json.*.tmp"))


def test_kills_during_writes_leave_a_whole_file_and_their_leftovers_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    # A large unknown key makes each write long enough for kills to land inside one.
    path.write_text(json.dumps({"padding": "x" * 4_000_000}), encoding="utf-8")
    for attempt in range(40):
        kill_a_busy_writer(path, after_s=0.2 + 0.013 * attempt)
        data = json.loads(path.read_text(encoding="utf-8"))  # always whole: written by os.replace
        assert data["samples_format"] in ("png", "jpg", "webp") and len(data["padding"]) == 4_000_000
        if temp_files(tmp_path):
            break
    leftovers = temp_files(tmp_path)
    assert leftovers, "no kill landed inside a write"

    # A young temporary file may be another process's write in flight: kept. Old ones are removed.
    Settings(path)
    assert temp_files(tmp_path) == leftovers
    old = time.time() - STALE_TEMP_AGE_S - 5
    for leftover in leftovers:
        os.utime(leftover, (old, old))
    others = [tmp_path / ".config.json.notours.tmp", tmp_path / "notes.tmp", tmp_path / ".styles.csv.tmp"]
    for other in others:
        other.write_text("keep me", encoding="utf-8")
        os.utime(other, (old, old))
    settings = Settings(path)
    assert temp_files(tmp_path) == [tmp_path / ".config.json.notours.tmp"]
    assert all(other.exists() for other in others)
    assert settings.load_warning is None and settings.get("samples_format") in ("png", "jpg", "webp")
