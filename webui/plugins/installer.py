"""Installing extensions: clone from a git URL or a local path, update with git pull, and run an
extension's install.py once (again when the file changes), its output going to the log."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from webui.core.errors import InvalidParameter, UserError

log = logging.getLogger(__name__)

CLONE_TIMEOUT_S = 600
INSTALL_TIMEOUT_S = 1800
_NAME = re.compile(r"^[\w.\-]+$")


class InstallError(UserError):
    """git or an install.py failed; the message carries its output."""


def name_from_url(url: str) -> str:
    """The folder name A1111 derives from a URL: the last path part without .git (a repository's own
    .git folder names the folder above it)."""
    parts = [part for part in re.split(r"[/\\:]", url.strip()) if part]
    if len(parts) > 1 and parts[-1] == ".git":
        parts.pop()
    tail = parts[-1] if parts else ""
    return tail.removesuffix(".git")


def install(url: str, extensions_dir: Path, name: str = "", branch: str = "") -> Path:
    """Clone `url` (or copy a local folder that is not a git repository) into extensions_dir/<name>."""
    url = url.strip()
    if not url:
        raise InvalidParameter("Install from URL: the URL is empty")
    name = name.strip() or name_from_url(url)
    if not _NAME.match(name) or name in (".", ".."):
        raise InvalidParameter(
            f"extension folder name {name!r} may only hold letters, digits, '.', '-' and '_'"
        )
    target = extensions_dir / name
    if target.exists():
        raise InvalidParameter(f"extension folder {target} already exists")
    extensions_dir.mkdir(parents=True, exist_ok=True)
    temp = extensions_dir / f".installing-{uuid.uuid4().hex}"  # hidden: never discovered half-cloned
    try:
        local = Path(url).expanduser()
        if local.is_dir() and not _is_git_repository(local) and not branch:
            shutil.copytree(local, temp)
        else:
            command = ["git", "clone", *(["--branch", branch] if branch else []), "--", url, str(temp)]
            _run(command, extensions_dir, CLONE_TIMEOUT_S)
        os.replace(temp, target)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    log.info("Installed extension %s from %s into %s", name, url, target)
    return target


def _is_git_repository(path: Path) -> bool:
    """A working tree, a bare repository or a .git folder (a plain folder is copied instead)."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def update(path: Path) -> str:
    """git pull (fast-forward only) in the extension's folder; returns git's message."""
    if not (path / ".git").exists():
        raise InvalidParameter(f"extension {path.name} was not installed with git; it cannot be updated")
    return _run(["git", "-C", str(path), "pull", "--ff-only"], path, CLONE_TIMEOUT_S)


def _run(command: list[str], cwd: Path, timeout: int) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password on a console
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InstallError(f"{' '.join(command[:2])} failed: {error}") from error
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise InstallError(f"{' '.join(command[:2])} failed (exit code {done.returncode}): {output}")
    return output


class InstallMarks:
    """Which install.py files already ran, by extension name and the file's sha256 (a JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def done(self, name: str, digest: str) -> bool:
        return self._read().get(name) == digest

    def mark(self, name: str, digest: str) -> None:
        data = {**self._read(), name: digest}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        temp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(temp, self.path)


def run_install_script(script: Path, marks: InstallMarks, name: str, first_path: Path | None = None) -> bool:
    """Run `script` with this Python, in its folder, unless it already ran in this version; True when it
    ran. Its output is logged line by line; a failure raises InstallError (and it runs again next start)."""
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    if marks.done(name, digest):
        return False
    log.info("Running %s", script)
    root = str(Path(__file__).resolve().parents[2])  # so install.py can import webui / launch helpers
    # first_path: A1111 extensions' `import launch` finds webui/compat/a1111/pythonpath/launch.py there
    paths = [str(first_path) if first_path else None, root, os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    try:
        done = subprocess.run(
            [sys.executable, str(script)], cwd=script.parent, capture_output=True, text=True,
            timeout=INSTALL_TIMEOUT_S, env=env, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InstallError(f"{script} failed: {error}") from error
    for line in (done.stdout + done.stderr).splitlines():
        log.info("[%s install.py] %s", name, line)
    if done.returncode != 0:
        raise InstallError(f"{script} failed with exit code {done.returncode} (output in the log)")
    marks.mark(name, digest)
    return True
