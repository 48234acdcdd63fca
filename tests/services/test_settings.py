import json
import threading
from pathlib import Path

import pytest

from webui.core.errors import InvalidParameter
from webui.services import settings as settings_module
from webui.services.option_table import OPTIONS, OPTIONS_BY_NAME
from webui.services.settings import Settings


def test_missing_file_gives_defaults_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    settings = Settings(path)
    assert settings.get("samples_format") == "png"
    assert settings.get("sd_checkpoints_limit") == 1
    assert settings.get("sd_vae") == "Automatic"
    assert settings.get("outdir_txt2img_samples") == "outputs/txt2img-images"
    assert settings.as_dict() == {option.name: option.default for option in OPTIONS}
    assert not path.exists()


def test_table_covers_the_a1111_options_with_valid_defaults() -> None:
    expected = {
        "sd_model_checkpoint", "sd_checkpoints_limit", "sd_checkpoints_keep_in_cpu", "sd_checkpoint_cache",
        "samples_format", "samples_save", "save_txt", "outdir_samples", "outdir_txt2img_samples",
        "outdir_img2img_samples", "CLIP_stop_at_last_layers", "show_progress_every_n_steps",
        "live_previews_enable", "sd_vae",
    }  # fmt: skip
    assert expected <= set(OPTIONS_BY_NAME)
    assert len(OPTIONS_BY_NAME) == len(OPTIONS)
    for option in OPTIONS:
        assert option.validate(option.default) == option.default
        assert option.label and option.section


def test_updates_persist_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    changes = {"samples_format": "webp", "CLIP_stop_at_last_layers": 2, "save_txt": False}
    changed = Settings(path).update(changes)
    assert changed == {"samples_format": "webp", "CLIP_stop_at_last_layers": 2}  # save_txt was already False
    reloaded = Settings(path)
    assert reloaded.get("samples_format") == "webp"
    assert reloaded.get("CLIP_stop_at_last_layers") == 2
    assert json.loads(path.read_text(encoding="utf-8"))["samples_format"] == "webp"


def test_unknown_keys_in_the_file_survive_a_save(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    original = {"sd_vae": "my.vae.safetensors", "some_a1111_option": [1, 2]}
    path.write_text(json.dumps(original), encoding="utf-8")
    settings = Settings(path)
    assert settings.get("sd_vae") == "my.vae.safetensors"
    assert "some_a1111_option" not in settings.as_dict()
    settings.update({"jpeg_quality": 95})
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["some_a1111_option"] == [1, 2] and on_disk["jpeg_quality"] == 95


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"no_such_option": 1}, "no_such_option"),
        ({"samples_save": "yes"}, "samples_save must be bool"),
        ({"sd_checkpoints_limit": True}, "sd_checkpoints_limit must be int"),
        ({"sd_checkpoints_limit": 2.5}, "sd_checkpoints_limit must be int"),
        ({"sd_checkpoints_limit": 0}, "sd_checkpoints_limit must be between 1 and 10"),
        ({"CLIP_stop_at_last_layers": 13}, "CLIP_stop_at_last_layers must be between"),
        ({"samples_format": "gif"}, "samples_format must be one of png, jpg, jpeg, webp"),
        ({"sd_vae": None}, "sd_vae must be str"),
    ],
)
def test_invalid_updates_name_the_option_and_change_nothing(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = tmp_path / "config.json"
    settings = Settings(path)
    with pytest.raises(InvalidParameter, match=message):
        settings.update({"save_txt": True, **changes})  # the valid part is not applied either
    assert settings.get("save_txt") is False
    assert not path.exists()


def test_integral_floats_are_accepted_for_int_options(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "config.json")
    settings.update({"show_progress_every_n_steps": 5.0})
    value = settings.get("show_progress_every_n_steps")
    assert value == 5 and type(value) is int


def test_get_unknown_option_names_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="nope"):
        Settings(tmp_path / "config.json").get("nope")


# A damaged config.json: tests/reliability/test_settings_file.py (moved aside, defaults, one warning).


def test_failed_save_keeps_old_file_and_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    settings = Settings(path)
    settings.update({"samples_format": "jpg"})
    before = path.read_text(encoding="utf-8")

    def broken_dump(data: object, handle: object, **kwargs: object) -> None:
        handle.write('{"samples_format": "we')  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(settings_module.json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        settings.update({"samples_format": "webp"})
    assert settings.get("samples_format") == "jpg"
    assert path.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_output_dir_follows_a1111_override(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "config.json")
    assert settings.output_dir("img2img") == "outputs/img2img-images"
    settings.update({"outdir_samples": "data/all"})
    assert settings.output_dir("txt2img") == "data/all"
    assert settings.output_dir("extras") == "data/all"  # A1111: outdir_samples wins for extras too
    with pytest.raises(InvalidParameter, match="saved-grids"):
        settings.output_dir("saved-grids")


def test_concurrent_updates_all_land(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    settings = Settings(path)
    names = [option.name for option in OPTIONS if option.type is bool]
    barrier = threading.Barrier(len(names))

    def flip(name: str) -> None:
        barrier.wait()
        settings.update({name: not OPTIONS_BY_NAME[name].default})

    threads = [threading.Thread(target=flip, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reloaded = Settings(path).as_dict()
    assert all(reloaded[name] is not OPTIONS_BY_NAME[name].default for name in names)
