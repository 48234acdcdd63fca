"""Where one kind of model file is found: the data dir's folder, then the install's shipped one (its demo
models), so a fresh --data-dir still lists them, after its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def scan_roots(root: Path | None, shipped: Path | None) -> list[Path]:
    """The folders to scan, resolved and existing, in order; the shipped one only when it is another one."""
    roots: list[Path] = []
    for folder in (root, shipped):
        if folder is not None and folder.is_dir() and folder.resolve() not in roots:
            roots.append(folder.resolve())
    return roots


def model_files(root: Path | None, shipped: Path | None) -> Iterator[tuple[Path, Path]]:
    """(folder, file) for every file under the scan_roots, folder by folder, each folder's files sorted."""
    for folder in scan_roots(root, shipped):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                yield folder, path
