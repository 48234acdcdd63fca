"""The generation-parameter schema: each field of the params classes is declared once, with `param()`.

A declaration carries everything the rest of the program derives from it:

- validation: `minimum`/`maximum`, `multiple_of`, `choices` (by label, or `by_index` for A1111's API
  integers) and `normalize` (e.g. sampler aliases), checked by `validate()`;
- the API: the request field of the same name (`api=False` for fields A1111's API sets another way) and
  its default there when A1111's API default differs from its UI's (`api_default`); api/models.py builds
  the pydantic request models, so /openapi.json shows the limits;
- the UI: `label`, the limits and `step` make the tab's widget (ui/param_widgets.py; `ui=False` for
  fields the page sets elsewhere, like the checkpoint);
- infotext: the key it is written under (`infotext`), the other keys it is read from (`aliases`), when
  it is written (`written_when`) and whether paste resets it when absent (`paste_reset`);
- X/Y/Z plot: `axis` names the axis that sets it;
- checkpoint metadata: `model_default` lets a checkpoint's `webui.default_params` set its default.

Pure Python: no torch, no gradio, no pydantic here.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from webui.core.errors import InvalidParameter

SPEC = "webui.spec"  # the dataclass field metadata key holding a field's Spec


class _Same:
    """`api_default` when the API's default is the field's own default."""

    def __repr__(self) -> str:
        return "SAME"


SAME: Any = _Same()

Choices = tuple[str, ...] | Callable[[], tuple[str, ...]]


@dataclass(frozen=True)
class Spec:
    """One generation field, as the user and the other programs see it (see the module docstring)."""

    label: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    multiple_of: int | None = None
    choices: Choices | None = None
    by_index: bool = False
    normalize: Callable[[Any], Any] | None = None
    api: bool = True
    api_default: Any = SAME
    infotext: str | None = None
    aliases: tuple[str, ...] = ()
    written_when: Callable[[Any], bool] | None = None
    paste_reset: bool | str = False
    axis: str | None = None
    model_default: bool = False
    ui: bool = True

    def choice_labels(self) -> tuple[str, ...]:
        if self.choices is None:
            return ()
        return self.choices() if callable(self.choices) else self.choices

    @property
    def infotext_keys(self) -> tuple[str, ...]:
        """Every key the field is read from: its own first, then the aliases."""
        return ((self.infotext,) if self.infotext else ()) + self.aliases


def param(default: Any, **spec: Any) -> Any:
    """A dataclass field with `default` and the Spec made of `spec` (params are frozen and hold
    immutable values, so the default is the value itself)."""
    return dataclasses.field(default=default, metadata={SPEC: Spec(**spec)})


@dataclass(frozen=True)
class Field:
    """A declared field of a params class: name, Python type, default and Spec."""

    name: str
    kind: type  # int, float, bool or str (the field's type without `| None`)
    optional: bool  # None is allowed
    default: Any
    spec: Spec


def fields(cls: type) -> tuple[Field, ...]:
    """The declared (Spec-carrying) fields of a params class, in declaration order."""
    return _declared_fields(cls)


@cache  # classes do not change: read each one's declarations once
def _declared_fields(cls: Any) -> tuple[Field, ...]:
    hints = typing.get_type_hints(cls)
    result = []
    for item in dataclasses.fields(cls):
        spec = item.metadata.get(SPEC)
        if spec is None:
            continue
        kind, optional = _base_type(hints[item.name])
        result.append(Field(item.name, kind, optional, item.default, spec))
    return tuple(result)


def field_map(cls: type) -> Mapping[str, Field]:
    return {f.name: f for f in fields(cls)}


def _base_type(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    if args and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return hint, False


def api_default(item: Field) -> Any:
    return item.default if item.spec.api_default is SAME else item.spec.api_default


def check(item: Field, value: Any) -> Any:
    """`value` for `item` checked against its declaration and normalized; InvalidParameter names the
    field and the rule it breaks."""
    spec, name = item.spec, item.name
    if value is None:
        if item.optional:
            return None
        raise InvalidParameter(f"{name} must be set")
    if item.kind is bool:
        if not isinstance(value, bool):
            raise InvalidParameter(f"{name} must be true or false, got {value!r}")
    elif item.kind in (int, float):
        value = _number(name, value, item.kind)
    elif not isinstance(value, item.kind):
        raise InvalidParameter(f"{name} must be {item.kind.__name__}, got {value!r}")
    if spec.minimum is not None and spec.maximum is not None and not spec.minimum <= value <= spec.maximum:
        raise InvalidParameter(f"{name} must be between {spec.minimum:g} and {spec.maximum:g}, got {value}")
    if spec.multiple_of and value % spec.multiple_of:
        raise InvalidParameter(f"{name} must be a multiple of {spec.multiple_of}, got {value}")
    labels = spec.choice_labels()
    if labels and spec.by_index and not 0 <= value < len(labels):
        raise InvalidParameter(f"{name} must be 0-{len(labels) - 1} ({', '.join(labels)}), got {value}")
    if labels and not spec.by_index and value not in labels:
        raise InvalidParameter(f"{name} must be one of {', '.join(labels)}, got {value!r}")
    return spec.normalize(value) if spec.normalize else value


def _number(name: str, value: Any, kind: type) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidParameter(f"{name} must be a finite number, got {value}")
    if kind is int and value != int(value):
        raise InvalidParameter(f"{name} must be a whole number, got {value}")
    return int(value) if kind is int else float(value)


def validate(params: Any) -> None:
    """Raise InvalidParameter for the first declared field of `params` that breaks its declaration."""
    for item in fields(type(params)):
        check(item, getattr(params, item.name))


_KIND_NAMES = {int: "whole number", float: "number", bool: "True or False", str: "text"}


def from_text(item: Field, text: str) -> Any:
    """An infotext (or other text) value as the field's type: "7" → 7, a choice label → its index for
    `by_index` fields. InvalidParameter names the infotext key when it cannot be read."""
    key = item.spec.infotext or item.name
    text = text.strip()
    try:
        if item.spec.by_index:
            index = item.spec.choice_labels().index(text)
            return bool(index) if item.kind is bool else index
        if item.kind is bool:
            if text not in ("True", "False"):
                raise ValueError(text)
            return text == "True"
        if item.kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        return item.kind(text)
    except ValueError:
        labels = ", ".join(item.spec.choice_labels())
        expected = f"one of {labels}" if item.spec.by_index else f"a {_KIND_NAMES[item.kind]}"
        raise InvalidParameter(f"Infotext {key!r} must be {expected}, got {text!r}") from None


def to_text_value(item: Field, value: Any) -> Any:
    """A field's value as infotext writes it: a choice index becomes its label."""
    return item.spec.choice_labels()[int(value)] if item.spec.by_index else value


def axes(cls: type) -> tuple[Field, ...]:
    """The fields an X/Y/Z plot axis can set, in declaration order."""
    return tuple(item for item in fields(cls) if item.spec.axis)


def model_default_fields(cls: type) -> tuple[Field, ...]:
    """The fields a checkpoint's metadata may give defaults for."""
    return tuple(item for item in fields(cls) if item.spec.model_default)
