"""A1111's shared.opts, shared.state and shared.sd_model as views onto one App (no state of their own)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webui.compat.a1111.modules.options import OptionHTML, OptionInfo
from webui.core.errors import InvalidParameter
from webui.services.option_table import Option

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins


# A1111 options this program has no setting for (no such feature here), read as A1111's defaults; an
# extension may set them (kept for the App's run, not saved).
A1111_ONLY_OPTIONS: dict[str, Any] = {
    "outdir_init_images": "outputs/init-images", "n_rows": -1, "grid_background_color": "#ffffff",
    "grid_prevent_empty_spots": False, "temp_dir": "", "clean_temp_dir_at_start": False,
}  # fmt: skip


class OptionsView:
    """shared.opts: attribute access to the App's settings; add_option, onchange, set, data."""

    def __init__(self, plugins: Plugins) -> None:
        object.__setattr__(self, "_plugins", plugins)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._plugins.settings.get(name)
        except InvalidParameter:
            if name in A1111_ONLY_OPTIONS:
                return self._a1111_only.get(name, A1111_ONLY_OPTIONS[name])
            raise AttributeError(f"no option named {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.set(name, value)

    @property
    def _a1111_only(self) -> dict[str, Any]:
        compat = self._plugins.compat
        return compat.a1111_only_options if compat is not None else {}

    def set(self, key: str, value: Any, is_api: bool = False, run_callbacks: bool = True) -> bool:
        if key in A1111_ONLY_OPTIONS and not any(
            option.name == key for option in self._plugins.settings.options
        ):
            changed = self._a1111_only.get(key, A1111_ONLY_OPTIONS[key]) != value
            self._a1111_only[key] = value
            return changed
        changed = self._plugins.settings.update({key: value})
        if changed and run_callbacks and self._plugins.compat is not None:
            self._plugins.compat.changed(key)
        return bool(changed)

    def get_default(self, key: str) -> Any:
        return self._plugins.settings.option(key).default

    @property
    def data(self) -> dict[str, Any]:
        """Every option's value now (a copy: change options with opts.set or attribute assignment)."""
        return self._plugins.settings.as_dict()

    @property
    def data_labels(self) -> dict[str, Any]:
        return {option.name: option for option in self._plugins.settings.options}

    def add_option(self, key: str, info: OptionInfo) -> None:
        if isinstance(info, OptionHTML) or info.do_not_save:
            return  # an explanatory text in A1111's settings page: nothing to keep
        default = tuple(info.default) if isinstance(info.default, list) else info.default
        minimum, maximum = info.bounds()
        section = info.section[1] if info.section else "Extensions"
        label = (info.label or key) + info.comment_after
        option = Option(
            key, default, label, section, choices=info.choices(), minimum=minimum, maximum=maximum
        )
        self._plugins.settings.add_option(option)
        if info.onchange is not None and self._plugins.compat is not None:
            self._plugins.compat.add_onchange(key, info.onchange)

    def onchange(self, key: str, func: Any, call: bool = True) -> None:
        if self._plugins.compat is not None:
            self._plugins.compat.add_onchange(key, func)
        if call:
            func()

    def save(self, filename: str | None = None) -> None:
        """Settings are saved when they change."""

    def same_type(self, x: Any, y: Any) -> bool:
        return x is None or y is None or type(x) is type(y)


class StateView:
    """shared.state: the App's running job (A1111's names); interrupt() and skip() act on it."""

    def __init__(self, plugins: Plugins) -> None:
        self._plugins = plugins

    def _job(self) -> Any:
        jobs = self._plugins.jobs
        return jobs.current() if jobs is not None else None

    def _state(self, key: str, default: Any = 0) -> Any:
        jobs = self._plugins.jobs
        return jobs.progress().state.get(key, default) if jobs is not None else default

    @property
    def interrupted(self) -> bool:
        job = self._job()
        return bool(job is not None and job.interrupted)

    @property
    def skipped(self) -> bool:
        job = self._job()
        return bool(job is not None and job.skipped)

    job_count = property(lambda self: self._state("job_count"))
    job_no = property(lambda self: self._state("job_no"))
    sampling_step = property(lambda self: self._state("sampling_step"))
    sampling_steps = property(lambda self: self._state("sampling_steps"))
    job_timestamp = property(lambda self: self._state("job_timestamp", "0"))
    job = property(lambda self: "" if self._job() is None else str(self._job().id))
    textinfo = None
    server_start = None

    @property
    def current_image(self) -> Any:
        jobs = self._plugins.jobs
        return jobs.progress().current_preview if jobs is not None else None

    def interrupt(self) -> None:
        if self._plugins.jobs is not None:
            self._plugins.jobs.interrupt()

    def skip(self) -> None:
        if self._plugins.jobs is not None:
            self._plugins.jobs.skip()

    def begin(self, job: str = "(unknown)") -> None:
        """A1111 scripts bracket work of their own with begin/end: our queue tracks jobs itself."""

    def end(self) -> None: ...

    def nextjob(self) -> None: ...

    def set_current_image(self) -> None: ...


class CheckpointInfo:
    """sd_model.sd_checkpoint_info: the loaded file's title, name and path."""

    def __init__(self, loaded: Any) -> None:
        path = loaded.path
        self.filename = str(path)
        self.name, self.name_for_extra, self.model_name = path.name, path.stem, path.stem
        self.title = path.name
        self.hash = self.shorthash = self.sha256 = None


class SdModelView:
    """shared.sd_model: the current checkpoint (None before one is used); `.pipe` is the diffusers one."""

    def __init__(self, loaded: Any) -> None:
        self._loaded = loaded
        self.sd_checkpoint_info = CheckpointInfo(loaded)
        family = str(loaded.architecture.family)  # "sd1", "sd2" or "sdxl"
        self.is_sdxl, self.is_sd2 = family == "sdxl", family == "sd2"
        self.is_sd1 = not (self.is_sdxl or self.is_sd2)
        self.sd_model_checkpoint = str(loaded.path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loaded, name)
