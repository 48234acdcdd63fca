"""A1111's extension index (the "Available" list): `{"extensions": [{"name", "url", "description",
"tags", …}]}` read from a local file or an http(s) URL, and which entries are installed already."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webui.core.cmd_args import insecure_access_allowed
from webui.core.errors import InvalidParameter, UserError
from webui.plugins.installer import name_from_url
from webui.plugins.registry import ExtensionAccessDenied

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins

# The index A1111's Extensions tab loads by default.
DEFAULT_INDEX_URL = (
    "https://raw.githubusercontent.com/AUTOMATIC1111/stable-diffusion-webui-extensions/master/index.json"
)
MAX_INDEX_BYTES = 16 * 1024 * 1024
TIMEOUT_S = 30


class IndexUnavailable(UserError):
    """The index could not be read (no such file, no network, not an index)."""


@dataclass(frozen=True)
class IndexEntry:
    name: str
    url: str
    description: str
    tags: tuple[str, ...]


def read_index(source: str) -> list[IndexEntry]:
    """The entries of the index at `source` (a path or an http(s) URL)."""
    source = source.strip()
    if not source:
        raise InvalidParameter("Extension index: give a URL or a file")
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) only
                data = response.read(MAX_INDEX_BYTES + 1)
        else:
            data = Path(source).expanduser().read_bytes()
    except (OSError, ValueError) as error:
        raise IndexUnavailable(f"Extension index {source!r} could not be read: {error}") from error
    if len(data) > MAX_INDEX_BYTES:
        raise IndexUnavailable(f"Extension index {source!r} is larger than {MAX_INDEX_BYTES:,} bytes")
    return parse_index(data, source)


def parse_index(data: bytes | str, source: str = "index") -> list[IndexEntry]:
    try:
        document = json.loads(data)
    except ValueError as error:
        raise IndexUnavailable(f"Extension index {source!r} is not JSON: {error}") from error
    items = document.get("extensions") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise IndexUnavailable(f'Extension index {source!r} has no "extensions" list (A1111\'s index format)')
    entries = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"].strip():
            tags = item.get("tags") if isinstance(item.get("tags"), list) else []
            entries.append(
                IndexEntry(
                    name=str(item.get("name") or name_from_url(item["url"])),
                    url=item["url"].strip(),
                    description=str(item.get("description") or ""),
                    tags=tuple(str(tag) for tag in tags),
                )
            )
    return entries


def _plain_url(url: str) -> str:
    return url.strip().lower().removesuffix("/").removesuffix(".git")


def installed(plugins: Plugins, entry: IndexEntry) -> bool:
    """Whether an extension from this entry's repository (or with its folder name) is installed."""
    remotes = {_plain_url(extension.git_info().remote or "") for extension in plugins.extensions}
    names = {extension.name for extension in plugins.extensions}
    return _plain_url(entry.url) in remotes or name_from_url(entry.url) in names


def rows(plugins: Plugins, entries: list[IndexEntry]) -> list[list[Any]]:
    return [
        [
            entry.name,
            entry.description,
            ", ".join(entry.tags),
            entry.url,
            "yes" if installed(plugins, entry) else "",
        ]
        for entry in entries
    ]


def load(plugins: Plugins, source: str) -> list[IndexEntry]:
    """read_index, refused like installing on a server other machines can reach (it reads files and URLs
    the server can reach for whoever asks)."""
    if not insecure_access_allowed(plugins.args):
        raise ExtensionAccessDenied(
            "Loading an extension index is disabled because this server is reachable from other machines "
            "(--listen, --share or --server-name); start it with --enable-insecure-extension-access "
            "to allow it"
        )
    return read_index(source)


def install(plugins: Plugins, entries: list[IndexEntry], name: str) -> Path:
    """Install the entry named `name` (refused on exposed servers, as every install)."""
    for entry in entries:
        if entry.name == name:
            return plugins.install(entry.url)
    raise InvalidParameter(f"no extension named {name!r} in the loaded index")
