"""Saved prompt styles in each generation tab's toolbar: pick styles, apply them to the prompt boxes,
save the current prompts as a style or delete one.

Styles are applied by the 📋 button, which writes the styled prompts into the boxes and clears the
selection (as A1111's button does), so what is generated is always what the boxes show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core.errors import UserError
from webui.services.styles import PromptStyle
from webui.ui.generation import GenerationTab

if TYPE_CHECKING:
    from webui.services.container import Services


def build_styles(services: Services, tabs: Sequence[GenerationTab]) -> list[gr.Dropdown]:
    """Add the styles controls to each tab; a save or delete in one tab updates every tab's list."""
    dropdowns: list[gr.Dropdown] = []
    editors = []
    for tab in tabs:
        with tab.toolbar:
            dropdown = gr.Dropdown(
                label="Styles", choices=services.styles.names(), value=[], multiselect=True,
                elem_id=f"{tab.name}_styles", scale=4, min_width=160,
            )  # fmt: skip
            apply = gr.Button("📋", elem_id=f"{tab.name}_style_apply", min_width=40, scale=0)
            edit = gr.Button("💾", elem_id=f"{tab.name}_style_create", min_width=40, scale=0)
            with gr.Column(visible=False, min_width=240, elem_id=f"{tab.name}_style_editor") as editor:
                name = gr.Textbox(label="Style name", elem_id=f"{tab.name}_style_name")
                with gr.Row():
                    save = gr.Button("Save style", elem_id=f"{tab.name}_style_save", min_width=80)
                    delete = gr.Button("Delete style", elem_id=f"{tab.name}_style_delete", min_width=80)
        dropdowns.append(dropdown)
        editors.append((tab, dropdown, apply, edit, editor, name, save, delete))

    def choices(selections: Sequence[list[str] | None]) -> list[gr.Dropdown]:
        """Every tab's list anew, each keeping those of its selected styles that still exist."""
        names = services.styles.names()
        return [
            gr.Dropdown(choices=names, value=[n for n in kept or [] if n in names]) for kept in selections
        ]

    for tab, dropdown, apply, edit, editor, name, save, delete in editors:
        prompt, negative = tab.controls["prompt"], tab.controls["negative_prompt"]

        def apply_styles(selected: list[str], text: str, negative_text: str) -> tuple[str, str, list[str]]:
            try:
                styled, styled_negative = services.styles.apply(text, negative_text, selected or [])
            except UserError as error:
                gr.Warning(str(error))
                return text, negative_text, selected
            return styled, styled_negative, []

        def save_style(style_name: str, text: str, negative_text: str, *selections: list[str]) -> list[Any]:
            try:
                services.styles.save(PromptStyle(style_name.strip(), text, negative_text))
            except UserError as error:
                gr.Warning(str(error))
                return [gr.update(), *(gr.update() for _ in dropdowns)]
            gr.Info(f"Style {style_name.strip()!r} saved.")
            return [gr.Column(visible=False), *choices(selections)]

        def delete_style(style_name: str, *selections: list[str]) -> list[Any]:
            try:
                services.styles.delete(style_name.strip())
            except UserError as error:
                gr.Warning(str(error))
                return [gr.update(), *(gr.update() for _ in dropdowns)]
            gr.Info(f"Style {style_name.strip()!r} deleted.")
            return [gr.Column(visible=False), *choices(selections)]

        apply.click(apply_styles, inputs=[dropdown, prompt, negative], outputs=[prompt, negative, dropdown])
        # The editor opens with the first selected style's name, ready to overwrite it.
        edit.click(
            lambda selected: (gr.Column(visible=True), selected[0] if selected else ""),
            inputs=dropdown,
            outputs=[editor, name],
        )
        save.click(save_style, inputs=[name, prompt, negative, *dropdowns], outputs=[editor, *dropdowns])
        delete.click(delete_style, inputs=[name, *dropdowns], outputs=[editor, *dropdowns])
    return dropdowns


def load_updates(services: Services, dropdowns: Sequence[gr.Dropdown]) -> list[gr.Dropdown]:
    """Every styles list with the styles now in the file (it may have been edited by hand)."""
    names = services.styles.names()
    return [gr.Dropdown(choices=names, value=[]) for _ in dropdowns]
