#!/usr/bin/env python3
"""The test command: `python tools/run_tests.py [pytest arguments]`.

Prepares .venv exactly as launch.py does (torch, requirements.txt, requirements-nodeps.txt with --no-deps),
adds requirements-test.txt and Debian's chromium for the browser tests, then runs pytest from the
repository root with the venv's Python and exits with pytest's exit code (5, "no tests collected",
included).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import launch  # noqa: E402  (needs ROOT on sys.path; standard library only)

TEST_REQUIREMENTS = ROOT / "requirements-test.txt"
TEST_NODEPS_REQUIREMENTS = ROOT / "requirements-test-nodeps.txt"  # their declared deps would replace torch
TEST_STAMP = "webui-test-install.sha256"
CHROMIUM = Path("/usr/bin/chromium")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
NO_TESTS_COLLECTED = 5
# No outside look-ups during tests: gradio's analytics and the Hugging Face hub stay offline. One torch
# thread per test process: pytest-xdist runs one process per core, and the tests' tiny models gain nothing
# from a second thread (two threads each on a 2-core machine made the suite slower).
TEST_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
# One test process per core (pytest-xdist); a file's tests stay in one process, so its module-scoped
# servers are built once. `-n 0` after these (in the command's own arguments) runs in one process.
PARALLEL = ("-n", "auto", "--dist", "loadfile")


def ensure_chromium(
    chromium: Path = CHROMIUM, run: launch.Runner = launch.run_command, log: launch.Log = print
) -> bool:
    """Install Debian's chromium when it is missing; True when it is there afterwards."""
    return ensure_debian_package(chromium, "chromium", "Chromium", run, log)


def ensure_emoji_font(
    font: Path = EMOJI_FONT, run: launch.Runner = launch.run_command, log: launch.Log = print
) -> bool:
    """Install Debian's colour emoji font, so the icon buttons (🎲 ♻️ 🗑️ …) render in the browser tests'
    screenshots as users see them; True when it is there afterwards."""
    return ensure_debian_package(font, "fonts-noto-color-emoji", "the emoji font", run, log)


def ensure_debian_package(path: Path, package: str, what: str, run: launch.Runner, log: launch.Log) -> bool:
    """`apt-get install -y package` when `path` (a file it installs) is missing; True when it is there."""
    if path.exists():
        return True
    if shutil.which("apt-get") is None:
        log(
            f"WARNING: {path} is missing and there is no apt-get to install it; "
            f"install {what} yourself or the browser tests will fail"
        )
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        log(f"Installing {what} for the browser tests: {' '.join(command)}")
        code = run(command, env)
        if code != 0:
            log(
                f"WARNING: '{' '.join(command)}' failed with exit code {code} (it needs root); "
                f"without {what} the browser tests will fail"
            )
            return False
    if not path.exists():
        log(f"WARNING: apt-get installed {package} but {path} does not exist")
        return False
    return True


def steps_for_tests() -> tuple[launch.InstallStep, ...]:
    """The test packages, and Ray: the worker tests run in CI (launch.py installs it only on request)."""
    return (
        launch.InstallStep(
            f"Installing {TEST_REQUIREMENTS.name}",
            ("pip", "install", "-r", str(TEST_REQUIREMENTS)),
            (TEST_REQUIREMENTS,),
        ),
        launch.InstallStep(
            f"Installing {TEST_NODEPS_REQUIREMENTS.name} without dependencies",
            ("pip", "install", "--no-deps", "-r", str(TEST_NODEPS_REQUIREMENTS)),
            (TEST_NODEPS_REQUIREMENTS,),
        ),
        *launch.ray_steps(),
    )


def main(
    argv: Sequence[str],
    venv_dir: Path = launch.VENV_DIR,
    chromium: Path = CHROMIUM,
    run: launch.Runner = launch.run_command,
    log: launch.Log = print,
) -> int:
    try:
        python = launch.prepare_environment(venv_dir, run=run, log=log)
        launch.ensure_installed(python, steps_for_tests(), venv_dir / TEST_STAMP, run, log)
    except launch.SetupError as error:
        log(f"run_tests.py: {error}")
        return 1
    if ensure_chromium(chromium, run, log):
        ensure_emoji_font(run=run, log=log)
    code = run([str(python), "-m", "pytest", *PARALLEL, *argv], {**os.environ, **TEST_ENV})
    if code == NO_TESTS_COLLECTED:
        log("pytest collected no tests: that counts as a failure")
    return code


if __name__ == "__main__":
    os.chdir(ROOT)  # pytest finds pyproject.toml and tests/ from here
    sys.exit(main(sys.argv[1:]))
