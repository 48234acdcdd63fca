"""Extensions' preload.py: `preload(parser)` adds command-line flags before the flags are parsed.

Runs in launch.py before anything heavy is installed or imported, so only the standard library is used
here, and a preload.py should do no more than add flags. The extension folders are found the way the
App finds them (extensions-builtin/, --data-dir/extensions, then the install's extensions/), skipping
those disabled in config.json or by --disable-all-extensions / --disable-extra-extensions. A preload.py
that fails is logged (on stderr when logging is not set up yet) and skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from webui.core.cmd_args import REPO_ROOT

BUILTIN_DIR = REPO_ROOT / "extensions-builtin"
log = logging.getLogger(__name__)


def _early_args(argv: Sequence[str]) -> argparse.Namespace:
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--data-dir", default=None)
    early.add_argument("--disable-all-extensions", action="store_true")
    early.add_argument("--disable-extra-extensions", action="store_true")
    return early.parse_known_args(list(argv))[0]


def _disabled(config_file: Path) -> set[str]:
    try:
        names = json.loads(config_file.read_text(encoding="utf-8")).get("disabled_extensions", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else set()


def preload_files(argv: Sequence[str], builtin_dir: Path = BUILTIN_DIR) -> list[Path]:
    """The preload.py files of the extensions that will load, built-in ones first."""
    early = _early_args(argv)
    if early.disable_all_extensions:
        return []
    data_dir = Path(early.data_dir).expanduser().resolve() if early.data_dir else REPO_ROOT
    disabled = _disabled(data_dir / "config.json")
    extra = list(dict.fromkeys([data_dir / "extensions", REPO_ROOT / "extensions"]))  # once if the same
    folders = [builtin_dir] + ([] if early.disable_extra_extensions else extra)
    files, names = [], set(disabled)  # an extension named like an earlier one is skipped, as the App does
    for folder in folders:
        if folder.is_dir():
            for extension in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if extension.name not in names and (extension / "preload.py").is_file():
                    files.append(extension / "preload.py")
                names.add(extension.name)
    return files


def add_extension_flags(
    parser: argparse.ArgumentParser, argv: Sequence[str], builtin_dir: Path = BUILTIN_DIR
) -> None:
    """Call each extension's preload(parser)."""
    for path in preload_files(argv, builtin_dir):
        name = f"_webui_preload_{path.parent.name}".replace("-", "_").replace(".", "_")
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            preload = getattr(module, "preload", None)
            if callable(preload):
                preload(parser)
        except Exception:  # one broken preload.py must not stop the start
            log.exception("Extension %s: preload.py failed; skipped", path.parent.name)
