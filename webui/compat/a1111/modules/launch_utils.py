"""launch / modules.launch_utils for an extension's install.py: is_installed, run_pip, run, git.

Packages that would replace the web UI's torch stack are refused with a message: installing them breaks
the program for every extension (ENVIRONMENT.md: torchvision from the registry breaks diffusers here).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from typing import Any

python = sys.executable
git = os.environ.get("GIT", "git")
index_url = os.environ.get("INDEX_URL", "")
dir_repos = "repositories"
REFUSED = ("torch", "torchvision", "torchaudio", "xformers", "triton", "nvidia-")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


class RefusedPackage(RuntimeError):
    """install.py asked for a package that would replace the program's torch."""


def is_installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            return False


def _refused(command: str) -> list[str]:
    names = []
    for word in shlex.split(command):
        match = _WORD.match(word)
        if word.startswith("-") or match is None:
            continue
        name = match.group(0).lower()
        if any(
            name == refused or (refused.endswith("-") and name.startswith(refused)) for refused in REFUSED
        ):
            names.append(word)
    return names


def run_pip(command: str, desc: str | None = None, live: bool = False) -> str:
    """`pip <command>` with this Python; torch and packages that replace it are refused."""
    refused = _refused(command)
    if refused:
        raise RefusedPackage(
            f"install.py asked to install {', '.join(refused)}: packages that replace the web UI's torch "
            "are refused (install them yourself if you really mean to)"
        )
    index = f" --index-url {index_url}" if index_url else ""
    return run(f'"{python}" -m pip {command} --prefer-binary{index}', desc=f"Installing {desc}", live=live)


def run(
    command: str,
    desc: str | None = None,
    errdesc: str | None = None,
    custom_env: dict[str, str] | None = None,
    live: bool = False,
) -> str:
    if desc:
        print(desc)
    done = subprocess.run(
        command, shell=True, env=custom_env or os.environ, capture_output=not live, text=True, check=False
    )
    if done.returncode != 0:
        output = "" if live else f"\nstdout: {done.stdout}\nstderr: {done.stderr}"
        raise RuntimeError(f"{errdesc or 'Error running command'}.\nCommand: {command}{output}")
    return "" if live else done.stdout


def run_python(code: str, desc: str | None = None, errdesc: str | None = None) -> str:
    return run(f'"{python}" -c {shlex.quote(code)}', desc, errdesc)


def repo_dir(name: str) -> str:
    return os.path.join(os.getcwd(), dir_repos, name)


def requirements_met(requirements_file: str) -> bool:
    with open(requirements_file, encoding="utf8") as file:
        for line in file:
            name = _WORD.match(line.strip())
            if name and not is_installed(name.group(0)):
                return False
    return True


def __getattr__(name: str) -> Any:
    raise AttributeError(f"launch has no attribute {name!r} in this web UI's A1111 layer")
