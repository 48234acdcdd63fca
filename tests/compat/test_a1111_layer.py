"""A1111-style extensions (tests/compat/fixtures) loaded unchanged into a real App, generating with the
tiny SD1 checkpoint: their scripts, callbacks, settings, extra network, install.py and a broken one."""

from __future__ import annotations

import pytest

from tests.compat.conftest import FIXTURES
from tests.plugins.conftest import EXAMPLE
from webui.compat.a1111 import uses_a1111
from webui.core import infotext
from webui.core.cmd_args import REPO_ROOT
from webui.core.params import Txt2Img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = Txt2Img(
    prompt="a red circle", steps=2, width=64, height=64, sampler_name="Euler", cfg_scale=5, seed=7
)


def test_the_a1111_extensions_load_and_the_broken_one_is_isolated(compat_app):
    titles = {loaded.script.title() for loaded in compat_app.plugins.scripts}
    assert {"Prompt suffix", "Seed variations"} <= titles
    errors = [error for error in compat_app.plugins.errors.entries() if error.extension == "sd-webui-broken"]
    assert len(errors) == 1
    assert "sd_hijack" in errors[0].error and errors[0].where == "import scripts/broken.py"
    assert not [e for e in compat_app.plugins.errors.entries() if e.extension != "sd-webui-broken"]


def test_on_ui_settings_option_is_a_setting_of_ours(compat_app):
    option = compat_app.settings.option("prompt_suffix_text")
    assert (option.default, option.section) == ("in watercolor", "Prompt suffix")


def test_always_on_script_rewrites_all_prompts_with_its_setting(compat_app):
    result = compat_app.generate(SMALL.replace(alwayson_scripts=(("Prompt suffix", (True, "")),)), False)
    fields = infotext.parse(result.infotexts[0])
    assert fields["Prompt"] == "a red circle, in watercolor"
    assert fields["Prompt suffix"] == "in watercolor"
    off = compat_app.generate(SMALL, save_images=False)
    assert infotext.parse(off.infotexts[0])["Prompt"] == "a red circle"
    assert "Prompt suffix" not in off.infotexts[0]


def test_changed_setting_reaches_the_script_through_shared_opts(compat_app):
    shared = compat_app.plugins.compat.modules["shared"]
    shared.opts.prompt_suffix_text = "in ink"
    try:
        assert compat_app.settings.get("prompt_suffix_text") == "in ink"
        result = compat_app.generate(SMALL.replace(alwayson_scripts=(("Prompt suffix", (True, "")),)), False)
        assert infotext.parse(result.infotexts[0])["Prompt"] == "a red circle, in ink"
    finally:
        shared.opts.prompt_suffix_text = "in watercolor"


def test_selectable_script_calls_process_images_and_adds_infotext(compat_app):
    result = compat_app.generate(SMALL.replace(script_name="Seed variations", script_args=(3,)), False)
    assert list(result.seeds) == [7, 8, 9]
    assert [infotext.parse(text)["Variation"] for text in result.infotexts] == ["1 of 3", "2 of 3", "3 of 3"]
    assert [infotext.parse(text)["Seed"] for text in result.infotexts] == ["7", "8", "9"]


def test_extra_network_gets_its_tags_and_the_engine_never_sees_them(compat_app):
    owner, network = compat_app.plugins.compat.extra_networks["colour"]
    assert owner.name == "sd-webui-colour-net"
    network.seen.clear()
    result = compat_app.generate(SMALL.replace(prompt="a red circle <colour:teal:0.5>"), False)
    assert network.seen == [("a red circle ", ["teal"], [0.5]), "deactivated"]
    fields = infotext.parse(result.infotexts[0])
    assert fields["Prompt"] == "a red circle"
    assert fields["Colour net"] == "teal:0.5"


def test_install_py_uses_launch_and_torch_is_refused(compat_app):
    folder = compat_app.plugins.extension("sd-webui-hello-api").path
    lines = (folder / "install-result.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "pillow installed: True"
    assert lines[1].startswith("refused: install.py asked to install torch==1.13.1")


def test_only_extensions_importing_modules_or_launch_get_the_layer():
    assert not uses_a1111(EXAMPLE) and not uses_a1111(REPO_ROOT / "extensions-builtin" / "xyz_grid")
    assert uses_a1111(FIXTURES / "sd-webui-colour-net")  # only its package imports modules


def test_shared_views_read_this_app(compat_app):
    shared = compat_app.plugins.compat.modules["shared"]
    assert shared.cmd_opts.hello_greeting == "bonjour"
    data_dir = compat_app.plugins.user_dir.parent
    assert shared.cmd_opts.embeddings_dir == str(data_dir / "embeddings")  # A1111 fills folder flags
    assert shared.cmd_opts.lora_dir == str(data_dir / "models" / "Lora")
    assert shared.opts.outdir_txt2img_samples == compat_app.settings.get("outdir_txt2img_samples")
    assert shared.sd_model.sd_checkpoint_info.title == "tiny-sd1.safetensors"
    assert shared.sd_model.is_sdxl is False
    assert shared.state.interrupted is False and shared.state.job_count == 0
    paths = compat_app.plugins.compat.modules["paths"]
    assert paths.models_path == str(compat_app.plugins.user_dir.parent / "models")


def test_before_token_counter_callbacks_rewrite_what_is_counted(compat_app):
    # the fixture's callback expands "__colour__" into four words, as a wildcards extension would
    counted = compat_app.tokens.count("a __colour__ circle", 20)
    assert counted == compat_app.tokens.count("a red green blue yellow circle", 20)
    from webui.services.tokens import TokenCounter

    assert counted != TokenCounter(compat_app.models).count("a __colour__ circle", 20)  # without callbacks
