# ruff: noqa
# fmt: off
# Written by gradio (its stub of the component subclasses in ui_components.py); kept so it is not rewritten.
"""modules.ui_components: A1111's small layout helpers as gradio 6 components (extensions subclass them).

gradio writes a .pyi stub next to the source of every component subclass; ui_components.pyi is that
stub, kept in the repository (unchanged, gradio leaves it alone) and excluded from lint by its header.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from gradio.events import Dependency

class FormRow(gr.Row):
    def get_block_name(self) -> str:  # the page draws it as gradio's own
        return "row"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class FormColumn(gr.Column):
    def get_block_name(self) -> str:  # the page draws it as gradio's own
        return "column"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class FormGroup(gr.Group):
    def get_block_name(self) -> str:  # the page draws it as gradio's own
        return "group"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class ResizeHandleRow(gr.Row):
    def get_block_name(self) -> str:  # the page draws it as gradio's own
        return "row"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class FormHTML(gr.HTML):
    def get_block_name(self) -> str:  # the page draws it as gradio's own
        return "html"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class ToolButton(gr.Button):
    """A small button (A1111 styles it with its CSS class `tool`); extensions subclass it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["elem_classes"] = ["tool", *(kwargs.get("elem_classes") or [])]
        super().__init__(*args, **kwargs)

    # gradio reads a component's properties by the names in its __init__'s signature
    __init__.__signature__ = inspect.signature(gr.Button.__init__)  # type: ignore[attr-defined]

    def get_block_name(self) -> str:  # the page draws it (and extensions' subclasses) as a button
        return "button"

    def get_config(self, cls: Any = None) -> dict[str, Any]:
        # a subclass with an __init__ of its own (ARButton(ar=…, **kwargs)) still sends a button's props
        return super().get_config(cls or gr.Button)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class DropdownMulti(gr.Dropdown):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("multiselect", True)
        super().__init__(*args, **kwargs)

    __init__.__signature__ = inspect.signature(gr.Dropdown.__init__)  # type: ignore[attr-defined]

    def get_config(self, cls: Any = None) -> dict[str, Any]:
        return super().get_config(cls or gr.Dropdown)

    def get_block_name(self) -> str:
        return "dropdown"
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class InputAccordion:
    """A1111's accordion whose open state is an input: `with InputAccordion(False, label="X") as on:`
    puts components inside, and `on` is the checkbox (at the accordion's top here) that says whether
    the section is enabled. Other attributes are the checkbox's."""

    def __init__(
        self, value: bool = False, *, label: str = "", elem_id: str | None = None, **kwargs: Any
    ) -> None:
        accordion_id = f"{elem_id}-accordion" if elem_id else None
        self.accordion = gr.Accordion(label=label, open=bool(value), elem_id=accordion_id)
        with self.accordion:
            self.checkbox = gr.Checkbox(
                value=value, label=f"Enable {label}".strip(), elem_id=elem_id, **kwargs
            )

    def extra(self) -> gr.Row:
        return gr.Row()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.checkbox, name)

    def __enter__(self) -> gr.Checkbox:
        self.accordion.__enter__()
        return self.checkbox

    def __exit__(self, *exc: Any) -> None:
        self.accordion.__exit__(*exc)
