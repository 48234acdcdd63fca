"""modules.options: A1111's OptionInfo (an option an extension declares) and options_section."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class OptionInfo:
    """An option's default, label and widget as A1111 declares it; opts.add_option turns it into ours."""

    def __init__(
        self,
        default: Any = None,
        label: str = "",
        component: Any = None,
        component_args: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        onchange: Callable[[], Any] | None = None,
        section: tuple[str, str] | None = None,
        refresh: Callable[[], Any] | None = None,
        comment_before: str = "",
        comment_after: str = "",
        infotext: str | None = None,
        restrict_api: bool = False,
        category_id: str | None = None,
    ) -> None:
        self.default, self.label, self.component = default, label, component
        self.component_args, self.onchange, self.section = component_args, onchange, section
        self.refresh, self.comment_before, self.comment_after = refresh, comment_before, comment_after
        self.infotext, self.restrict_api, self.category_id = infotext, restrict_api, category_id
        self.do_not_save = False

    # A1111's chainable decorations of the label; only the text survives here.
    def link(self, label: str, url: str) -> OptionInfo:
        self.comment_after += f" [{label}]"
        return self

    def js(self, label: str, js_func: str) -> OptionInfo:
        return self

    def info(self, info: str) -> OptionInfo:
        self.comment_after += f" ({info})"
        return self

    def html(self, html: str) -> OptionInfo:
        return self

    def needs_restart(self) -> OptionInfo:
        return self

    def needs_reload_ui(self) -> OptionInfo:
        return self

    def choices(self) -> tuple[Any, ...] | None:
        args = self.component_args() if callable(self.component_args) else (self.component_args or {})
        found = args.get("choices")
        return tuple(found) if found is not None else None

    def bounds(self) -> tuple[float | None, float | None]:
        args = self.component_args() if callable(self.component_args) else (self.component_args or {})
        return args.get("minimum"), args.get("maximum")


class OptionHTML(OptionInfo):
    def __init__(self, text: str) -> None:
        super().__init__(str(text).strip(), label="")
        self.do_not_save = True


def options_section(section_identifier: tuple[str, str], options_dict: dict[str, Any]) -> dict[str, Any]:
    for value in options_dict.values():
        value.section = section_identifier
    return options_dict
