from __future__ import annotations

import importlib.util
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_tests() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("run_tests_under_test", ROOT / "tools" / "run_tests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeRunner:
    """Answers pytest with `pytest_code`, other commands with `code`; creates `creates` when called."""

    def __init__(self, code: int = 0, pytest_code: int = 0, creates: Path | None = None) -> None:
        self.code, self.pytest_code, self.creates = code, pytest_code, creates
        self.calls: list[tuple[list[str], Mapping[str, str] | None]] = []

    def __call__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        self.calls.append((list(command), env))
        if self.creates is not None:
            self.creates.touch()
        return self.pytest_code if "pytest" in command else self.code


@pytest.fixture
def venv(run_tests: types.ModuleType, tmp_path: Path) -> Path:
    python = run_tests.launch.venv_python(tmp_path / "venv")
    python.parent.mkdir(parents=True)
    python.touch()
    return tmp_path / "venv"


@pytest.mark.parametrize("pytest_code", [0, 1, 5])
def test_exit_code_is_pytests(
    run_tests: types.ModuleType, venv: Path, tmp_path: Path, pytest_code: int
) -> None:
    chromium = tmp_path / "chromium"
    chromium.touch()
    run = FakeRunner(pytest_code=pytest_code)
    assert run_tests.main(["-q", "tests/core"], venv, chromium, run, print) == pytest_code

    python = str(run_tests.launch.venv_python(venv))
    commands = [command for command, _ in run.calls]
    assert [python, "-m", "pip", "install", "-r", str(run_tests.TEST_REQUIREMENTS)] in commands
    pytest_command, env = run.calls[-1]
    assert pytest_command == [python, "-m", "pytest", *run_tests.PARALLEL, "-q", "tests/core"]
    assert env is not None
    offline_one_thread = (env["GRADIO_ANALYTICS_ENABLED"], env["HF_HUB_OFFLINE"], env["OMP_NUM_THREADS"])
    assert offline_one_thread == ("False", "1", "1")


def test_setup_failure_is_exit_code_1(run_tests: types.ModuleType, venv: Path, tmp_path: Path) -> None:
    log: list[str] = []
    run = FakeRunner(code=1)
    assert run_tests.main([], venv, tmp_path / "chromium", run, log.append) == 1
    assert "Installing torch failed" in log[-1]
    assert not any("pytest" in command for command, _ in run.calls)


def test_chromium_is_installed_when_missing(
    run_tests: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_tests.shutil, "which", lambda name: f"/usr/bin/{name}")
    chromium = tmp_path / "chromium"
    run = FakeRunner(creates=chromium)
    assert run_tests.ensure_chromium(chromium, run, print)
    assert [command for command, _ in run.calls] == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium"],
    ]

    run.calls.clear()
    assert run_tests.ensure_chromium(chromium, run, print)
    assert run.calls == []


def test_chromium_failure_is_reported(
    run_tests: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_tests.shutil, "which", lambda name: f"/usr/bin/{name}")
    log: list[str] = []
    assert not run_tests.ensure_chromium(tmp_path / "chromium", FakeRunner(code=100), log.append)
    assert "WARNING" in log[-1] and "exit code 100" in log[-1]

    monkeypatch.setattr(run_tests.shutil, "which", lambda name: None)
    assert not run_tests.ensure_chromium(tmp_path / "chromium", FakeRunner(), log.append)
    assert "no apt-get" in log[-1]


def test_emoji_font_is_installed_when_missing(
    run_tests: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_tests.shutil, "which", lambda name: f"/usr/bin/{name}")
    font = tmp_path / "NotoColorEmoji.ttf"
    run = FakeRunner(creates=font)
    assert run_tests.ensure_emoji_font(font, run, print)
    assert [command for command, _ in run.calls] == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "fonts-noto-color-emoji"],
    ]
