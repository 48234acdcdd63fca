"""📂: open a folder of the server's machine in its file manager (only offered when the UI is local)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from webui.core.errors import UserError

Opener = Callable[[Path], None]


def system_opener(folder: Path) -> None:
    """The OS's own way to show a folder: Explorer, Finder, or the desktop's xdg-open."""
    if sys.platform == "win32":
        os.startfile(folder)
        return
    program = "open" if sys.platform == "darwin" else "xdg-open"
    try:
        subprocess.Popen([program, str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as error:
        raise UserError(f"Cannot open {folder}: no {program} on the server ({error})") from error


def open_folder(folder: Path, opener: Opener = system_opener) -> Path:
    """Show `folder` with `opener`, creating it first (before the first image it does not exist yet)."""
    folder.mkdir(parents=True, exist_ok=True)
    opener(folder)
    return folder
