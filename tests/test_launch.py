from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("torch", "gradio", "diffusers", "transformers")
TORCH = "pip install torch==2.13.0"


@pytest.fixture(scope="module")
def launch() -> Iterator[types.ModuleType]:
    spec = importlib.util.spec_from_file_location("launch_under_test", ROOT / "launch.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


class FakeRunner:
    """Records commands instead of running them; optionally creates a file as the real one would."""

    def __init__(self, exit_code: int = 0, creates: Path | None = None) -> None:
        self.exit_code = exit_code
        self.creates = creates
        self.calls: list[list[str]] = []

    def __call__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        self.calls.append(list(command))
        if self.creates is not None:
            self.creates.parent.mkdir(parents=True, exist_ok=True)
            self.creates.touch()
        return self.exit_code


def fake_venv(launch: types.ModuleType, tmp_path: Path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    python = launch.venv_python(venv)
    python.parent.mkdir(parents=True)
    python.touch()
    return venv, python


def test_help_is_fast_lists_flags_and_imports_nothing_heavy() -> None:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "launch.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert elapsed < 2.0
    for flag in (
        "--port",
        "--listen",
        "--share",
        "--gradio-auth",
        "--api",
        "--nowebui",
        "--ckpt",
        "--ckpt-dir",
        "--lora-dir",
        "--vae-dir",
        "--embeddings-dir",
        "--controlnet-dir",
        "--data-dir",
        "--use-cpu",
        "--no-half",
        "--no-half-vae",
        "--precision",
        "--medvram",
        "--lowvram",
        "--skip-install",
        "--server-name",
        "--device-id",
    ):
        assert f"{flag} " in done.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "webui.core.cmd_args" in imported  # the check below would be blind without importtime lines
    assert not {name for name in imported if name.split(".")[0] in HEAVY_MODULES}


def test_install_runs_once_then_skips_until_inputs_change(launch: types.ModuleType, tmp_path: Path) -> None:
    venv, python = fake_venv(launch, tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("diffusers==0.42.1\n")
    run, log = FakeRunner(), []

    assert launch.prepare_environment(venv, requirements, TORCH, run, log.append) == python
    assert run.calls == [
        [str(python), "-m", "pip", "install", "torch==2.13.0"],
        [str(python), "-m", "pip", "install", "-r", str(requirements)],
    ]
    assert any("Installing torch" in line for line in log)

    run.calls.clear()
    launch.prepare_environment(venv, requirements, TORCH, run, log.append)
    assert run.calls == []

    requirements.write_text("diffusers==0.42.1\npiexif==1.1.3\n")
    launch.prepare_environment(venv, requirements, TORCH, run, log.append)
    assert len(run.calls) == 2

    run.calls.clear()
    gpu = "pip install torch --index-url https://download.pytorch.org/whl/cu124"
    launch.prepare_environment(venv, requirements, gpu, run, log.append)
    assert run.calls[0] == [
        str(python),
        "-m",
        "pip",
        "install",
        "torch",
        "--index-url",
        "https://download.pytorch.org/whl/cu124",
    ]


def test_failed_step_raises_and_leaves_no_stamp(launch: types.ModuleType, tmp_path: Path) -> None:
    venv, python = fake_venv(launch, tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pillow\n")

    with pytest.raises(launch.SetupError, match="Installing torch failed with exit code 3"):
        launch.prepare_environment(venv, requirements, TORCH, FakeRunner(exit_code=3), print)
    assert not (venv / launch.INSTALL_STAMP).exists()

    retry = FakeRunner()
    launch.prepare_environment(venv, requirements, TORCH, retry, print)
    assert len(retry.calls) == 2


def test_missing_requirements_file_is_named(launch: types.ModuleType, tmp_path: Path) -> None:
    venv, _ = fake_venv(launch, tmp_path)
    with pytest.raises(launch.SetupError, match="nothere.txt is missing"):
        launch.prepare_environment(venv, tmp_path / "nothere.txt", TORCH, FakeRunner(), print)


def test_venv_is_created_when_missing(launch: types.ModuleType, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run = FakeRunner(creates=launch.venv_python(venv))
    assert launch.ensure_venv(venv, run, print) == launch.venv_python(venv)
    assert run.calls == [[sys.executable, "-m", "venv", str(venv)]]

    run.calls.clear()
    launch.ensure_venv(venv, run, print)
    assert run.calls == []

    with pytest.raises(launch.SetupError, match="could not create the virtual environment"):
        launch.ensure_venv(tmp_path / "other", FakeRunner(), print)


def test_torch_command_comes_from_the_environment(launch: types.ModuleType) -> None:
    assert launch.torch_command_from_env({}) == TORCH
    assert launch.torch_command_from_env({"TORCH_COMMAND": "  "}) == TORCH
    assert (
        launch.torch_command_from_env({"TORCH_COMMAND": "pip install torch==2.6.0"})
        == "pip install torch==2.6.0"
    )
    with pytest.raises(launch.SetupError, match="TORCH_COMMAND is empty"):
        launch.base_steps("", Path("requirements.txt"))


def test_requirements_never_pull_torch() -> None:
    names = [
        line.split("=")[0].split("<")[0].split(">")[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "diffusers" in names
    assert not {"torch", "torchvision", "controlnet-aux"} & set(names)


def fake_serve(monkeypatch: pytest.MonkeyPatch) -> list[argparse.Namespace]:
    served: list[argparse.Namespace] = []
    app = types.ModuleType("webui.app")
    app.serve = served.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "webui.app", app)
    return served


def test_main_serves_inside_the_venv(
    launch: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = fake_serve(monkeypatch)
    monkeypatch.setattr(launch, "running_in_venv", lambda venv_dir: True)

    launch.main(["--skip-install", "--data-dir", str(tmp_path), "--port", "7999"])
    assert [args.port for args in served] == [7999]


def test_main_restarts_in_the_venv(
    launch: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv, python = fake_venv(launch, tmp_path)
    monkeypatch.setattr(launch, "VENV_DIR", venv)
    monkeypatch.setattr(launch, "running_in_venv", lambda venv_dir: False)

    class Restarted(Exception):
        pass

    def restart(python: Path, argv: Sequence[str]) -> None:
        raise Restarted(python, list(argv))

    monkeypatch.setattr(launch, "restart", restart)
    with pytest.raises(Restarted) as restarted:
        launch.main(["--skip-install", "--api"])
    assert restarted.value.args == (python, ["--skip-install", "--api"])


def test_main_reports_setup_errors(launch: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise launch.SetupError("Installing torch failed with exit code 1: pip install torch")

    monkeypatch.setattr(launch, "prepare_environment", broken)
    with pytest.raises(SystemExit) as exit_info:
        launch.main([])
    assert exit_info.value.code == "launch.py: Installing torch failed with exit code 1: pip install torch"


def test_nodeps_requirements_install_last_without_dependencies(
    launch: types.ModuleType, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pillow\n")
    assert len(launch.base_steps(TORCH, requirements)) == 2  # no requirements-nodeps.txt: no third step
    nodeps = tmp_path / launch.NODEPS_REQUIREMENTS
    nodeps.write_text("controlnet-aux==0.0.10\n")
    steps = launch.base_steps(TORCH, requirements)
    assert steps[-1].args == ("pip", "install", "--no-deps", "-r", str(nodeps))
    # editing the file changes the stamp's fingerprint, so the next start reinstalls
    before = launch.fingerprint(steps)
    nodeps.write_text("controlnet-aux==0.0.11\n")
    assert launch.fingerprint(launch.base_steps(TORCH, requirements)) != before


def test_shipped_nodeps_requirements_hold_only_what_would_pull_torch() -> None:
    lines = [
        line
        for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # both declare torchvision, which would replace our torch build (see ../shared/ENVIRONMENT.md)
    assert lines == ["controlnet-aux==0.0.10", "spandrel==0.4.2"]
