#!/usr/bin/env python3
"""Start the web UI: `python launch.py [flags]` (see `--help`).

On the first run this creates `.venv`, installs torch (TORCH_COMMAND) and requirements.txt into it and
restarts itself with the venv's Python; later runs find a stamp and go straight to serving. Only the
standard library is used until then, so any Python 3.10+ can start it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from webui.core.cmd_args import parse_args
from webui.plugins.preload import add_extension_flags

ROOT = Path(__file__).resolve().parent
VENV_DIR = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
# Packages whose declared dependencies would replace torch (controlnet-aux wants torchvision and timm, and
# pip then swaps the installed torch for another build): installed with --no-deps after requirements.txt.
NODEPS_REQUIREMENTS = "requirements-nodeps.txt"
DEFAULT_TORCH_COMMAND = "pip install torch==2.13.0"
# Lives inside the venv, so deleting .venv also forgets what was installed.
INSTALL_STAMP = "webui-install.sha256"
RAY_REQUIREMENTS = ROOT / "requirements-ray.txt"  # only for --workers / --ray-address
RAY_STAMP = "webui-ray-install.sha256"

Log = Callable[[str], None]


class Runner(Protocol):
    """Runs a command and returns its exit code; tests pass a fake one."""

    def __call__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> int: ...


class SetupError(RuntimeError):
    """The environment could not be prepared; the message names the failing step."""


@dataclass(frozen=True)
class InstallStep:
    """One `python -m <args>` command of the setup; `inputs` are files whose content it depends on."""

    label: str
    args: tuple[str, ...]
    inputs: tuple[Path, ...] = ()


def run_command(command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    return subprocess.run(list(command), env=None if env is None else dict(env), check=False).returncode


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def running_in_venv(venv_dir: Path) -> bool:
    return Path(sys.prefix).resolve() == venv_dir.resolve()


def torch_command_from_env(environ: Mapping[str, str]) -> str:
    return environ.get("TORCH_COMMAND", "").strip() or DEFAULT_TORCH_COMMAND


def base_steps(torch_command: str, requirements: Path) -> tuple[InstallStep, ...]:
    """Torch first, from TORCH_COMMAND (A1111 runs it as `python -m <TORCH_COMMAND>`), then the rest, then
    the requirements-nodeps.txt beside requirements.txt (when there is one) without their dependencies."""
    torch_args = tuple(shlex.split(torch_command))
    if not torch_args:
        raise SetupError("TORCH_COMMAND is empty; expected something like 'pip install torch'")
    steps = (
        InstallStep("Installing torch", torch_args),
        InstallStep(
            f"Installing {requirements.name}", ("pip", "install", "-r", str(requirements)), (requirements,)
        ),
    )
    nodeps = requirements.with_name(NODEPS_REQUIREMENTS)
    if nodeps.is_file():
        steps += (
            InstallStep(
                f"Installing {nodeps.name} without dependencies",
                ("pip", "install", "--no-deps", "-r", str(nodeps)),
                (nodeps,),
            ),
        )
    return steps


def fingerprint(steps: Sequence[InstallStep]) -> str:
    """Changes whenever a command or the content of a file it reads changes."""
    digest = hashlib.sha256()
    for step in steps:
        digest.update("\0".join(step.args).encode() + b"\n")
        for path in step.inputs:
            if not path.is_file():
                raise SetupError(f"{path} is missing; it is needed for: {step.label}")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_installed(
    python: Path, steps: Sequence[InstallStep], stamp: Path, run: Runner = run_command, log: Log = print
) -> bool:
    """Run the steps with `python` unless the stamp says they already ran; True when they ran."""
    expected = fingerprint(steps)
    if stamp.is_file() and stamp.read_text().strip() == expected:
        return False
    for step in steps:
        command = [str(python), "-m", *step.args]
        log(f"{step.label}: {shlex.join(command)}")
        code = run(command)
        if code != 0:
            raise SetupError(f"{step.label} failed with exit code {code}: {shlex.join(command)}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(expected + "\n")
    return True


def ensure_venv(venv_dir: Path, run: Runner = run_command, log: Log = print) -> Path:
    python = venv_python(venv_dir)
    if python.exists():
        return python
    log(f"Creating virtual environment: {sys.executable} -m venv {venv_dir}")
    code = run([sys.executable, "-m", "venv", str(venv_dir)])
    if code != 0 or not python.exists():
        raise SetupError(
            f"could not create the virtual environment {venv_dir} (exit code {code}); "
            "on Debian/Ubuntu install the python3-venv package"
        )
    return python


def prepare_environment(
    venv_dir: Path = VENV_DIR,
    requirements: Path = REQUIREMENTS,
    torch_command: str | None = None,
    run: Runner = run_command,
    log: Log = print,
) -> Path:
    """Make sure the venv exists with torch and requirements installed; returns its Python."""
    command = torch_command if torch_command is not None else torch_command_from_env(os.environ)
    python = ensure_venv(venv_dir, run, log)
    ensure_installed(python, base_steps(command, requirements), venv_dir / INSTALL_STAMP, run, log)
    return python


def ray_steps(requirements: Path = RAY_REQUIREMENTS) -> tuple[InstallStep, ...]:
    """Ray, for generation workers: installed only when a flag asks for them."""
    return (
        InstallStep(
            f"Installing {requirements.name}", ("pip", "install", "-r", str(requirements)), (requirements,)
        ),
    )


def restart(python: Path, argv: Sequence[str]) -> NoReturn:
    command = [str(python), str(ROOT / "launch.py"), *argv]
    print(f"Relaunching with {python}", flush=True)
    sys.stderr.flush()
    if os.name == "nt":  # no real exec on Windows: wait for the child and pass its exit code on
        sys.exit(subprocess.call(command))
    os.execv(command[0], command)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, extend=lambda parser: add_extension_flags(parser, argv))  # extensions' preload.py
    try:
        if not args.skip_install:
            python = prepare_environment()
            if args.workers or args.ray_address:
                ensure_installed(python, ray_steps(), VENV_DIR / RAY_STAMP)
        if not running_in_venv(VENV_DIR) and venv_python(VENV_DIR).exists():
            restart(venv_python(VENV_DIR), argv)
    except SetupError as error:
        sys.exit(f"launch.py: {error}")

    from webui.app import serve  # only now: it imports torch and gradio

    serve(args)


if __name__ == "__main__":
    main()
