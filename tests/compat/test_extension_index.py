"""The Extensions tab's Available list: A1111's index format read from a file, installing an entry, and
the same refusal as every install on a server other machines can reach."""

from __future__ import annotations

import json

import pytest

from tests.compat.conftest import FIXTURES
from webui.compat.a1111 import extension_index
from webui.core.cmd_args import parse_args
from webui.core.errors import UserError
from webui.plugins.registry import ExtensionAccessDenied, Plugins
from webui.services.settings import Settings


def make_plugins(root, *flags):
    return Plugins(
        Settings(root / "config.json"), parse_args(["--data-dir", str(root), *flags]), root, root / "none"
    )


def write_index(path, extensions):
    path.write_text(json.dumps({"about": "test index", "extensions": extensions}), encoding="utf-8")
    return path


def test_index_entries_are_read_and_installed(tmp_path):
    plugins = make_plugins(tmp_path)
    index = write_index(
        tmp_path / "index.json",
        [
            {"name": "Prompt suffix", "url": str(FIXTURES / "sd-webui-prompt-suffix"), "description": "adds",
             "tags": ["script", "prompting"], "added": "2024-01-01"},
            {"name": "No URL"},  # skipped: nothing to install from
        ],
    )  # fmt: skip
    entries = extension_index.load(plugins, str(index))
    assert [(entry.name, entry.tags) for entry in entries] == [("Prompt suffix", ("script", "prompting"))]
    assert extension_index.rows(plugins, entries)[0][-1] == ""

    path = extension_index.install(plugins, entries, "Prompt suffix")
    assert path == tmp_path / "extensions" / "sd-webui-prompt-suffix"
    assert (path / "scripts" / "prompt_suffix.py").is_file()
    assert extension_index.rows(plugins, entries)[0][-1] == "yes"
    with pytest.raises(UserError, match="no extension named 'Other'"):
        extension_index.install(plugins, entries, "Other")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not JSON"),
        ('{"extensions": {}}', 'no "extensions" list'),
        ("[]", 'no "extensions" list'),
    ],
)
def test_a_file_that_is_no_index_is_refused_with_the_reason(tmp_path, text, problem):
    (tmp_path / "bad.json").write_text(text, encoding="utf-8")
    with pytest.raises(extension_index.IndexUnavailable, match=problem):
        extension_index.load(make_plugins(tmp_path), str(tmp_path / "bad.json"))
    with pytest.raises(extension_index.IndexUnavailable, match="could not be read"):
        extension_index.load(make_plugins(tmp_path), str(tmp_path / "missing.json"))


def test_loading_an_index_is_refused_on_an_exposed_server(tmp_path):
    index = write_index(tmp_path / "index.json", [{"name": "x", "url": "https://example.invalid/x.git"}])
    with pytest.raises(ExtensionAccessDenied, match="--enable-insecure-extension-access"):
        extension_index.load(make_plugins(tmp_path, "--listen"), str(index))
    allowed = make_plugins(tmp_path, "--listen", "--enable-insecure-extension-access")
    assert [entry.name for entry in extension_index.load(allowed, str(index))] == ["x"]
