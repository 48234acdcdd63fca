"""Prompt matrix (A1111's built-in script, written on the plugin API).

The prompt "a busy city street|illustration|cinematic lighting" has a fixed first part and two
optional ones: four images, one for each combination of the optional parts, in a grid whose column and
row labels say which parts are in (+) and out (-)."""

from __future__ import annotations

from typing import Any

from webui.plugins import api

MAX_PARTS = 8  # 2^8 = 256 images already


def combinations(parts: list[str]) -> list[list[bool]]:
    """Which optional parts each image uses, image i using part j when bit j of i is set."""
    return [[bool(index >> bit & 1) for bit in range(len(parts))] for index in range(1 << len(parts))]


def joined(fixed: str, parts: list[str], used: list[bool], separator: str, at_start: bool) -> str:
    chosen = [part for part, on in zip(parts, used) if on]
    pieces = [*chosen, fixed] if at_start else [fixed, *chosen]
    return separator.join(piece for piece in pieces if piece)


def legend(parts: list[str], used: list[bool]) -> str:
    return " ".join(f"{'+' if on else '-'}{part}" for part, on in zip(parts, used)) or " "


class PromptMatrix(api.Script):
    def title(self) -> str:
        return "Prompt matrix"

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        tab = "img2img" if is_img2img else "txt2img"
        with gr.Row():
            at_start = gr.Checkbox(
                label="Put variable parts at start of prompt", value=False, elem_id=f"{tab}_matrix_at_start"
            )
            different_seeds = gr.Checkbox(
                label="Use different seed for each picture", value=False, elem_id=f"{tab}_matrix_seeds"
            )
        with gr.Row():
            which = gr.Radio(
                ["positive", "negative"],
                label="Select prompt",
                value="positive",
                elem_id=f"{tab}_matrix_prompt",
            )
            separator = gr.Radio(
                ["comma", "space"], label="Select joining char", value="comma", elem_id=f"{tab}_matrix_sep"
            )
        margin = gr.Slider(0, 500, value=0, step=2, label="Grid margins (px)", elem_id=f"{tab}_matrix_margin")
        return [at_start, different_seeds, which, separator, margin]

    def run(
        self, p: api.Processing, at_start: bool = False, different_seeds: bool = False,
        which: str = "positive", separator: str = "comma", margin: float = 0,
    ) -> api.Processed:  # fmt: skip
        field = "negative_prompt" if which == "negative" else "prompt"
        fixed, *parts = [part.strip() for part in getattr(p, field).split("|")]
        if not parts:
            raise api.InvalidParameter("Prompt matrix: separate the parts of the prompt with '|'")
        if len(parts) > MAX_PARTS:
            raise api.InvalidParameter(
                f"Prompt matrix: at most {MAX_PARTS} '|' parts ({1 << MAX_PARTS} images)"
            )
        join = ", " if separator == "comma" else " "
        api.fix_seed(p)
        images, infotexts, seeds, paths, warnings = [], [], [], [], []
        uses = combinations(parts)
        first: api.Processed | None = None
        for index, used in enumerate(uses):
            pc = p.copy()
            setattr(pc, field, joined(fixed, parts, used, join, at_start))
            pc.seed = p.seed + index if different_seeds else p.seed
            pc.batch_size, pc.n_iter = 1, 1
            processed = api.process_images(pc)
            if not processed.images:
                break
            first = first or processed
            images.append(processed.images[0])
            infotexts.append(processed.infotexts[0])
            seeds.append(processed.seeds[0])
            paths += processed.paths
            warnings += processed.warnings
            if processed.interrupted:
                break
        if first is None:
            return api.Processed(p, [], interrupted=True)
        # columns: the first half of the parts; rows: the rest (A1111's layout)
        col_bits = (len(parts) + 1) // 2
        cols = 1 << col_bits
        x_labels = [legend(parts[:col_bits], used[:col_bits]) for used in uses[:cols]]
        y_labels = [legend(parts[col_bits:], uses[row * cols][col_bits:]) for row in range(len(uses) // cols)]
        complete = len(images) == len(uses)
        grid = api.labelled_grid(
            images, cols, x_labels if complete else [], y_labels if complete else [], int(margin)
        )
        extra: dict[str, Any] = {"Script": self.title(), "Prompt matrix parts": " | ".join(parts)}
        grid_info = api.create_infotext(first, extra)
        grid_path = api.save_grid(p, grid, grid_info, first.seed)
        return api.Processed(
            p,
            [grid, *images],
            infotexts=[grid_info, *infotexts],
            seeds=[first.seed, *seeds],
            paths=[path for path in [grid_path, *paths] if path],
            warnings=warnings,
            interrupted=not complete,
        )
