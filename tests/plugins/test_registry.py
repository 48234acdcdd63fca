"""The plugin registry without models: discovery, enabling, loading and isolation, options, p, the
install/update security gate, install.py and preload.py. Extensions are written into temporary folders."""

from __future__ import annotations

import argparse
import logging
import subprocess
from pathlib import Path

import pytest

from tests.plugins.conftest import add_example, write_extension
from webui.core.cmd_args import parse_args
from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img, Txt2Img
from webui.plugins import api, preload
from webui.plugins.installer import name_from_url
from webui.plugins.processing import Processing
from webui.plugins.registry import ExtensionAccessDenied, Plugins
from webui.services.settings import Settings

SCRIPT = """
from webui.plugins import api

class Hello(api.Script):
    def title(self):
        return "Hello"

def options():
    api.add_option("hello_greeting", "hi", "Greeting", "Hello", choices=("hi", "hey"))

api.on_ui_settings(options)
"""


def plugins_for(root: Path, *flags: str, builtin: Path | None = None) -> Plugins:
    args = parse_args(["--data-dir", str(root), *flags])
    return Plugins(Settings(root / "config.json"), args, root, builtin or root / "no-builtin")


def git(cwd: Path, *args: str) -> str:
    command = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "-c",
        "init.defaultBranch=main",
        *args,
    ]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_discovers_builtin_then_user_extensions_and_loads_their_scripts(tmp_path):
    builtin = tmp_path / "builtin"
    write_extension(builtin.parent / "b", "x", {})  # unrelated folder
    (builtin / "zeta" / "scripts").mkdir(parents=True)
    (builtin / "zeta" / "scripts" / "hello.py").write_text(SCRIPT)
    write_extension(
        tmp_path,
        "alpha",
        {
            "scripts/hello2.py": SCRIPT.replace("Hello", "Hello2").replace(
                '"hello_greeting"', '"hello2_greeting"'
            ),
            "metadata.ini": "[Extension]\nName = Alpha ext\nDescription = d\n",
        },
    )
    write_extension(tmp_path, ".hidden", {"scripts/x.py": "raise SystemExit"})
    plugins = plugins_for(tmp_path, builtin=builtin)
    assert [(e.name, e.builtin) for e in plugins.extensions] == [("zeta", True), ("alpha", False)]
    assert plugins.extensions[1].title == "Alpha ext" and plugins.extensions[1].metadata["description"] == "d"
    assert [loaded.script.title() for loaded in plugins.scripts] == ["Hello", "Hello2"]
    assert plugins.scripts[0].script.extension == "zeta"
    assert plugins.runner("txt2img").titles() == ["Hello", "Hello2"]
    assert not plugins.errors.entries()


def test_disabled_extensions_are_listed_but_not_loaded(tmp_path):
    write_extension(tmp_path, "one", {"scripts/a.py": SCRIPT})
    write_extension(
        tmp_path,
        "two",
        {"scripts/a.py": SCRIPT.replace("Hello", "Two").replace('"hello_greeting"', '"two_greeting"')},
    )
    plugins = plugins_for(tmp_path)
    assert plugins.set_enabled(["two"]) == ("one",)
    again = plugins_for(tmp_path)  # a restart: the choice was saved in config.json
    assert [(e.name, e.enabled) for e in again.extensions] == [("one", False), ("two", True)]
    assert [loaded.script.title() for loaded in again.scripts] == ["Two"]
    assert not plugins_for(tmp_path, "--disable-all-extensions").scripts
    with pytest.raises(InvalidParameter, match="no extension named nope"):
        plugins.set_enabled(["nope"])


def test_extension_options_are_added_and_read_from_config(tmp_path):
    (tmp_path / "config.json").write_text('{"hello_greeting": "hey"}')
    write_extension(tmp_path, "one", {"scripts/a.py": SCRIPT})
    plugins = plugins_for(tmp_path)
    assert plugins.settings.get("hello_greeting") == "hey"
    assert plugins.settings.option("hello_greeting").section == "Hello"
    with pytest.raises(InvalidParameter, match="must be one of hi, hey"):
        plugins.settings.update({"hello_greeting": "yo"})


def test_errors_are_recorded_with_extension_name_and_others_still_load(tmp_path):
    write_extension(tmp_path, "bad", {"scripts/a.py": "import no_such_module_here\n", "scripts/b.py": SCRIPT})
    write_extension(
        tmp_path,
        "worse",
        {"scripts/c.py": "from webui.plugins import api\napi.on_ui_tabs(lambda: [('not', 'a')])\n"},
    )
    plugins = plugins_for(tmp_path)
    (error,) = plugins.errors.entries()
    assert (error.extension, error.where) == ("bad", "import scripts/a.py")
    assert "ModuleNotFoundError" in error.error and "no_such_module_here" in error.traceback
    assert [loaded.script.title() for loaded in plugins.scripts] == ["Hello"]
    assert plugins.ui_tabs() == []  # a malformed on_ui_tabs answer is reported, not shown
    assert plugins.errors.entries()[-1].extension == "worse"
    assert "triples" in plugins.errors.entries()[-1].error


def test_registering_outside_extension_loading_is_refused():
    with pytest.raises(RuntimeError, match="only while the web UI loads"):
        api.on_ui_tabs(list)


def test_unknown_script_names_are_refused_listing_the_known_ones(tmp_path):
    write_extension(tmp_path, "one", {"scripts/a.py": SCRIPT})
    plugins = plugins_for(tmp_path)
    plugins.check(Txt2Img(script_name="hello"), "txt2img")  # titles compare case-insensitively
    plugins.check(Txt2Img(alwayson_scripts=(("ControlNet", ()),)), "txt2img")  # the built-in ControlNet's
    with pytest.raises(InvalidParameter, match="script 'Nope' not found for txt2img; scripts: Hello"):
        plugins.check(Txt2Img(script_name="Nope"), "txt2img")
    with pytest.raises(InvalidParameter, match="always-on script 'Hello' not found"):
        plugins.check(Txt2Img(alwayson_scripts=(("Hello", ()),)), "txt2img")


def test_processing_reads_and_writes_the_frozen_params():
    p = Processing(Img2Img(prompt="a", denoising_strength=0.5, extra_generation_params=(("Old", 1),)))
    p.prompt = "b"
    p.denoising_strength = 0.3
    p.extra_generation_params["New"] = [1, 2]
    p.extra_generation_params["Skipped"] = None
    p.my_state = 7  # a script's own attribute: kept on p, not in the params
    assert p.is_img2img and p.params.prompt == "b" and p.params.denoising_strength == 0.3
    assert p.params.extra_generation_params == (("Old", 1), ("New", "[1, 2]"))
    twin = p.copy()
    twin.prompt = "c"
    twin.extra_generation_params["Twin"] = "t"
    assert (p.prompt, twin.prompt, twin.my_state) == ("b", "c", 7)
    assert "Twin" not in p.extra_generation_params
    with pytest.raises(AttributeError):
        _ = p.no_such_field


def test_page_assets_hold_the_loaded_extensions_files(tmp_path):
    add_example(tmp_path)
    write_extension(tmp_path, "off", {"javascript/off.js": "window.off = 1;", "style.css": ".off {}"})
    (tmp_path / "config.json").write_text('{"disabled_extensions": ["off"]}')
    head, css = plugins_for(tmp_path).page_assets()
    assert 'data-extension="example-watermark"' in head and "exampleWatermark" in head
    assert "#watermark_tab_intro" in css
    assert "window.off" not in head and ".off" not in css


@pytest.mark.parametrize(
    ("flags", "allowed"),
    [((), True), (("--listen",), False), (("--share",), False), (("--server-name", "0.0.0.0"), False),
     (("--listen", "--enable-insecure-extension-access"), True)],
)  # fmt: skip
def test_install_is_refused_when_reachable_from_other_machines(tmp_path, flags, allowed):
    source = write_extension(tmp_path / "src", "plain-ext", {"scripts/a.py": SCRIPT})
    plugins = plugins_for(tmp_path / "data", *flags)
    if allowed:
        assert plugins.install(str(source)) == tmp_path / "data" / "extensions" / "plain-ext"
    else:
        with pytest.raises(ExtensionAccessDenied, match="--enable-insecure-extension-access") as refused:
            plugins.install(str(source))
        assert refused.value.status_code == 403
        with pytest.raises(ExtensionAccessDenied):
            plugins.update("anything")
        assert not (tmp_path / "data" / "extensions" / "plain-ext").exists()


def test_install_from_git_then_update(tmp_path):
    repo = write_extension(tmp_path / "remote", "my-ext", {"scripts/a.py": SCRIPT})
    git(repo, "init")
    git(repo, "add", ".")
    git(repo, "commit", "-m", "first")
    plugins = plugins_for(tmp_path / "data")
    path = plugins.install(str(repo) + "/.git")
    assert path.name == "my-ext" and (path / "scripts" / "a.py").is_file()
    installed = plugins.extension("my-ext")
    assert installed.enabled and installed.git_info().commit_hash == git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(InvalidParameter, match="already exists"):
        plugins.install(str(repo))
    (repo / "scripts" / "b.py").write_text("X = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-m", "second")
    plugins.update("my-ext")
    assert (path / "scripts" / "b.py").is_file()
    assert [e.name for e in plugins_for(tmp_path / "data").loaded] == ["my-ext"]  # loads on the next start
    with pytest.raises(InvalidParameter, match="may only hold"):
        plugins.install(str(repo), name="../escape")


def test_name_from_url():
    assert name_from_url("https://github.com/someone/sd-webui-thing.git") == "sd-webui-thing"
    assert name_from_url("git@github.com:someone/thing") == "thing"
    assert name_from_url("/local/path/ext/") == "ext"


def test_install_py_runs_once_and_again_when_changed(tmp_path, caplog):
    folder = write_extension(tmp_path, "needs", {"install.py": "print('installing needs')\n"})
    with caplog.at_level(logging.INFO):
        plugins_for(tmp_path)
        plugins_for(tmp_path)
    assert [r.getMessage() for r in caplog.records].count("[needs install.py] installing needs") == 1
    (folder / "install.py").write_text("import sys\nprint('v2 failed')\nsys.exit(3)\n")
    plugins = plugins_for(tmp_path)
    (error,) = plugins.errors.entries()
    assert error.where == "install.py" and "exit code 3" in error.error


def test_preload_adds_flags_and_a_failing_preload_is_skipped(tmp_path, caplog):
    add_example(tmp_path)
    write_extension(
        tmp_path, "badpre", {"preload.py": "def preload(parser):\n    raise ValueError('nope')\n"}
    )
    write_extension(
        tmp_path, "offpre", {"preload.py": "def preload(parser):\n    parser.add_argument('--off-flag')\n"}
    )
    (tmp_path / "config.json").write_text('{"disabled_extensions": ["offpre"]}')
    argv = ["--data-dir", str(tmp_path), "--watermark-text", "(c) me"]
    args = parse_args(
        argv, extend=lambda parser: preload.add_extension_flags(parser, argv, tmp_path / "none")
    )
    assert args.watermark_text == "(c) me" and not hasattr(args, "off_flag")
    assert "Extension badpre: preload.py failed" in caplog.text
    assert (
        preload.preload_files(["--data-dir", str(tmp_path), "--disable-extra-extensions"], tmp_path / "none")
        == []
    )
    assert isinstance(args, argparse.Namespace)
