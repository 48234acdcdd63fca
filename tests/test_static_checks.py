"""The static checks CI runs with the tests: ruff lint and format, the layer contracts, strict mypy.

Each runs the venv's own executable (installed from requirements-test.txt) from the repository root, with
its configuration in pyproject.toml, and fails with what the tool printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CHECKS = {
    "ruff lint": ["ruff", "check", "--no-cache", "--output-format", "concise", "."],
    "ruff format": ["ruff", "format", "--check", "--no-cache", "."],
    # [tool.importlinter]: the layers of docs/architecture.md and what core, engine, ui and api may import
    "layer contracts": ["lint-imports", "--no-cache"],
    # [tool.mypy]: strict on webui/core and webui/services; its cache (.mypy_cache) keeps reruns fast
    "mypy strict": ["mypy"],
}


@pytest.mark.parametrize("name", CHECKS)
def test_static_check_passes(name: str) -> None:
    program, *args = CHECKS[name]
    executable = BIN / program
    assert executable.exists(), f"{executable} is missing: install requirements-test.txt into the venv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # lint-imports imports nothing but must find `webui`
    done = subprocess.run(
        [str(executable), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(CHECKS[name])} failed:\n{done.stdout}{done.stderr}", pytrace=False)
