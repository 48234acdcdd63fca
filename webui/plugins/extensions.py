"""Extension folders (A1111's layout) and what is known about each: scripts, assets, metadata, git state.

extensions/<name>/            (extensions-builtin/<name>/ for the ones shipped with the program)
    scripts/*.py              Script subclasses and callback registrations, imported at start-up
    install.py                optional: installs the extension's requirements, run once
    preload.py                optional: preload(parser) adds command-line flags
    javascript/*.js           added to the page
    style.css                 added to the page
    metadata.ini              optional: [Extension] Name = …, Description = …
"""

from __future__ import annotations

import configparser
import logging
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 10


@dataclass(frozen=True)
class GitInfo:
    """Where an installed extension came from; empty strings when its folder is not a git checkout."""

    remote: str = ""
    branch: str = ""
    commit_hash: str = ""
    commit_date: int = 0  # seconds since the epoch

    @property
    def version(self) -> str:
        return self.commit_hash[:8]

    @property
    def date_text(self) -> str:
        if not self.commit_date:
            return ""
        return datetime.fromtimestamp(self.commit_date, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Extension:
    name: str  # the folder name: what the enable/disable list and error reports use
    path: Path
    builtin: bool
    enabled: bool
    metadata: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def title(self) -> str:
        return self.metadata.get("name") or self.name

    @property
    def scripts(self) -> list[Path]:
        return sorted((self.path / "scripts").glob("*.py"))

    @property
    def javascript(self) -> list[Path]:
        return sorted((self.path / "javascript").glob("*.js"))

    @property
    def stylesheet(self) -> Path | None:
        css = self.path / "style.css"
        return css if css.is_file() else None

    @property
    def install_script(self) -> Path | None:
        script = self.path / "install.py"
        return script if script.is_file() else None

    def git_info(self) -> GitInfo:
        """Asked of git each time (it changes on update); a folder of its own is needed, so a built-in
        extension inside the program's repository has none."""
        if not (self.path / ".git").exists():
            return GitInfo()
        return GitInfo(
            remote=_git(self.path, "remote", "get-url", "origin"),
            branch=_git(self.path, "rev-parse", "--abbrev-ref", "HEAD"),
            commit_hash=_git(self.path, "rev-parse", "HEAD"),
            commit_date=int(_git(self.path, "log", "-1", "--format=%ct") or 0),
        )


def _git(path: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("git %s in %s failed: %s", " ".join(args), path, error)
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def read_metadata(path: Path) -> dict[str, str]:
    """The [Extension] section of metadata.ini (keys in lower case); empty when missing or unreadable."""
    ini = path / "metadata.ini"
    if not ini.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        log.warning("%s is not a valid metadata.ini: %s", ini, error)
        return {}
    return dict(parser["Extension"]) if parser.has_section("Extension") else {}


def discover(
    builtin_dir: Path,
    user_dir: Path,
    disabled: Collection[str] = (),
    *,
    disable_all: bool = False,
    disable_extra: bool = False,
    shipped_dir: Path | None = None,
) -> list[Extension]:
    """Built-in extensions first, then the user's, then those of `shipped_dir` (the install's extensions/
    when the data dir is elsewhere), each sorted by name; an extension named like an earlier one is
    skipped (with a warning) so names stay unique."""
    found: list[Extension] = []
    names: set[str] = set()
    folders = [(builtin_dir, True), (user_dir, False)]
    if shipped_dir is not None and shipped_dir.resolve() != user_dir.resolve():
        folders.append((shipped_dir, False))
    for folder, builtin in folders:
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if path.name in names:
                log.warning("Skipping extension %s: an extension of that name is already loaded", path)
                continue
            names.add(path.name)
            off = path.name in disabled or disable_all or (disable_extra and not builtin)
            found.append(Extension(path.name, path, builtin, not off, read_metadata(path)))
    return found
