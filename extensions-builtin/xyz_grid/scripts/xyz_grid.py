"""X/Y/Z plot (A1111's built-in script, written on the plugin API): one image for every combination of
the values of up to three parameters, laid out in a labelled grid saved with its own infotext."""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from webui.core import image_limits, samplers
from webui.plugins import api

# Images one plot may make (X × Y × Z): checked with the grid's pixel size before the first image, so a
# typo like "1-100000" fails at once instead of running for hours.
MAX_CELLS = 2500

# "1-5", "1-10 (+2)", "10-1 (-3)", "1-10 [4]" (A1111's range syntax for number axes)
_RANGE = re.compile(
    r"^\s*([+-]?[\d.]+)\s*-\s*([+-]?[\d.]+)\s*(?:\(\s*([+-][\d.]+)\s*\)|\[\s*(\d+)\s*\])?\s*$"
)


@dataclass(frozen=True)
class Axis:
    label: str
    kind: type  # int, float or str: how values are read
    apply: Callable[[api.Processing, Any, Sequence[Any]], None]
    img2img_only: bool = False
    check: Callable[[Any], Any] | None = None  # raise for a value that cannot work (before generating)


def _field(name: str) -> Callable[[api.Processing, Any, Sequence[Any]], None]:
    def apply(p: api.Processing, value: Any, _: Sequence[Any]) -> None:
        setattr(p, name, value)

    return apply


def _prompt_sr(p: api.Processing, value: str, values: Sequence[str]) -> None:
    # The first value is what to look for; each value (the first included) replaces it.
    p.prompt = p.prompt.replace(values[0], value)
    p.negative_prompt = p.negative_prompt.replace(values[0], value)


def _sampler(value: str) -> str:
    return samplers.find_sampler(value).name


# Axes that are not one generation field, and checks finer than the field's declaration.
SPECIAL = {
    "Nothing": Axis("Nothing", str, lambda p, v, vs: None),
    "Prompt S/R": Axis("Prompt S/R", str, _prompt_sr),
}
CHECKS = {"Sampler": _sampler}
# The API addresses axes by index: these keep theirs; axes declared later are appended in declaration order.
INDEX_ORDER = (
    "Nothing", "Seed", "Steps", "CFG Scale", "Sampler", "Schedule type", "Checkpoint name", "Prompt S/R",
    "Denoising", "Clip skip", "CFG Rescale",
)  # fmt: skip


def _axes() -> tuple[Axis, ...]:
    """Every declared field's axis (webui/core/params.py `axis=`) and the special ones, in index order."""
    declared = {
        axis.label: Axis(
            axis.label, axis.kind, _field(axis.field), not axis.txt2img, CHECKS.get(axis.label, axis.check)
        )
        for axis in api.parameter_axes()
    }
    every = {**SPECIAL, **declared}
    return tuple(every[label] for label in INDEX_ORDER) + tuple(
        axis for label, axis in every.items() if label not in INDEX_ORDER
    )


AXES = _axes()
AXIS_NAMES = [axis.label for axis in AXES]


def find_axis(name: str, is_img2img: bool) -> Axis:
    for axis in AXES:
        if axis.label.lower() == str(name).strip().lower() and (is_img2img or not axis.img2img_only):
            return axis
    known = [axis.label for axis in AXES if is_img2img or not axis.img2img_only]
    raise api.InvalidParameter(f"X/Y/Z plot: unknown axis type {name!r}; types: {', '.join(known)}")


def _range(match: re.Match[str], kind: type) -> list[Any]:
    start, end = kind(match[1]), kind(match[2])
    if match[4]:  # [count]: evenly spaced, both ends included
        count = int(match[4])
        if count < 1:
            raise api.InvalidParameter("X/Y/Z plot: a range needs at least one value")
        _check_count(match[0], count)
        step = (end - start) / (count - 1) if count > 1 else 0
        return [kind(round(start + step * i, 6)) for i in range(count)]
    step = kind(match[3]) if match[3] else (1 if end >= start else -1)
    if step == 0 or (end - start) * step < 0:
        raise api.InvalidParameter(f"X/Y/Z plot: the range {match[0].strip()!r} never reaches its end")
    _check_count(match[0], int((end - start) / step) + 1)  # before the values are made
    values, value = [], start
    while (value <= end + 1e-9) if step > 0 else (value >= end - 1e-9):
        values.append(kind(round(value, 6)))
        value += step
    return values


def _check_count(text: str, count: int) -> None:
    if count > MAX_CELLS:
        raise api.InvalidParameter(
            f"X/Y/Z plot: the range {text.strip()!r} has {count} values; "
            f"a plot makes at most {MAX_CELLS} images"
        )


def check_plot(p: api.Processing, values: Sequence[Sequence[Any]], margin: int) -> None:
    """InvalidParameter before the first image when the plot would make too many images or a grid too
    large to hold (its pixel size, Z grids side by side)."""
    xs, ys, zs = (len(axis_values) for axis_values in values)
    if xs * ys * zs > MAX_CELLS:
        raise api.InvalidParameter(
            f"X/Y/Z plot: {xs} x {ys} x {zs} = {xs * ys * zs} images; a plot makes at most {MAX_CELLS}"
        )
    width = zs * (xs * (p.width + margin) + p.width)  # with room for the row labels
    height = ys * (p.height + margin) + p.height  # and the column labels
    image_limits.check_size(width, height, "X/Y/Z plot: the grid")


def parse_values(text: str, axis: Axis) -> list[Any]:
    """Comma-separated values (quotes allowed, as CSV); number axes also take ranges."""
    if axis.label == "Nothing":
        return [None]
    items = [
        item.strip() for row in csv.reader([text], skipinitialspace=True) for item in row if item.strip()
    ]
    if not items:
        raise api.InvalidParameter(f"X/Y/Z plot: no values for the {axis.label} axis")
    values: list[Any] = []
    for item in items:
        match = _RANGE.match(item) if axis.kind in (int, float) else None
        try:
            values += _range(match, axis.kind) if match else [axis.kind(item)]
        except ValueError:
            raise api.InvalidParameter(f"X/Y/Z plot: {item!r} is not a valid {axis.label} value") from None
    if axis.check:
        values = [axis.check(value) for value in values]
    return values


def label(axis: Axis, value: Any) -> str:
    return f"{axis.label}: {value}" if axis.kind is not str or axis.label == "Seed" else str(value)


class XYZGrid(api.Script):
    def title(self) -> str:
        return "X/Y/Z plot"

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        names = [axis.label for axis in AXES if is_img2img or not axis.img2img_only]
        tab = "img2img" if is_img2img else "txt2img"
        controls = []
        for letter, default in (("x", "Seed"), ("y", "Nothing"), ("z", "Nothing")):
            with gr.Row():
                controls.append(
                    gr.Dropdown(
                        names,
                        value=default,
                        label=f"{letter.upper()} type",
                        elem_id=f"{tab}_xyz_{letter}_type",
                    )
                )
                controls.append(
                    gr.Textbox(
                        label=f"{letter.upper()} values", lines=1, elem_id=f"{tab}_xyz_{letter}_values"
                    )
                )
        with gr.Row():
            controls.append(gr.Checkbox(label="Draw legend", value=True, elem_id=f"{tab}_xyz_draw_legend"))
            controls.append(
                gr.Checkbox(label="Keep -1 for seeds", value=False, elem_id=f"{tab}_xyz_keep_random")
            )
            controls.append(
                gr.Checkbox(label="Include Sub Images", value=False, elem_id=f"{tab}_xyz_sub_images")
            )
        controls.append(
            gr.Slider(0, 500, value=0, step=2, label="Grid margins (px)", elem_id=f"{tab}_xyz_margin")
        )
        return controls

    def run(
        self,
        p: api.Processing,
        x_type: str, x_values: str, y_type: str, y_values: str, z_type: str, z_values: str,
        draw_legend: bool = True, keep_random: bool = False, include_sub_images: bool = False,
        margin: float = 0,
    ) -> api.Processed:  # fmt: skip
        axes = [find_axis(name, p.is_img2img) for name in (x_type, y_type, z_type)]
        values = [parse_values(text or "", axis) for axis, text in zip(axes, (x_values, y_values, z_values))]
        if not keep_random:
            api.fix_seed(p)
            for index, axis in enumerate(axes):
                if axis.label == "Seed":
                    values[index] = [api.random_seed() if value == -1 else value for value in values[index]]
        check_plot(p, values, int(margin))
        xs, ys, zs = values
        cells: dict[tuple[int, int, int], api.Processed] = {}
        for (iz, z), (iy, y), (ix, x) in itertools.product(enumerate(zs), enumerate(ys), enumerate(xs)):
            pc = p.copy()
            for axis, value, all_values in zip(axes, (x, y, z), values):
                axis.apply(pc, value, all_values)
            processed = api.process_images(pc)
            cells[ix, iy, iz] = processed
            if processed.interrupted or not processed.images:
                break
        return self._assemble(p, axes, values, cells, draw_legend, include_sub_images, int(margin))

    def _assemble(
        self,
        p: api.Processing,
        axes: list[Axis],
        values: list[list[Any]],
        cells: dict[tuple[int, int, int], api.Processed],
        draw_legend: bool,
        include_sub_images: bool,
        margin: int,
    ) -> api.Processed:
        xs, ys, zs = values
        done = [cell for cell in cells.values() if cell.images]
        if not done:
            return api.Processed(p, [], interrupted=True)
        if any(cell.interrupted for cell in cells.values()):  # no grid: answer with the images made
            return api.Processed(
                p,
                [image for cell in done for image in cell.images],
                infotexts=[text for cell in done for text in cell.infotexts],
                seeds=[seed for cell in done for seed in cell.seeds],
                paths=[path for cell in done for path in cell.paths if path],
                interrupted=True,
            )
        blank = done[0].images[0].copy()
        blank.paste((0, 0, 0), (0, 0, *blank.size))
        grids = []
        for iz in range(len(zs)):
            images = [
                cells[ix, iy, iz].images[0] if cells.get((ix, iy, iz)) and cells[ix, iy, iz].images else blank
                for iy in range(len(ys))
                for ix in range(len(xs))
            ]
            x_labels = [label(axes[0], x) for x in xs] if draw_legend and axes[0].label != "Nothing" else []
            y_labels = [label(axes[1], y) for y in ys] if draw_legend and axes[1].label != "Nothing" else []
            grids.append(api.labelled_grid(images, len(xs), x_labels, y_labels, margin))
        if len(grids) > 1:
            titles = [label(axes[2], z) for z in zs] if draw_legend else [""] * len(zs)
            grid = api.titled_row(grids, titles, margin)
        else:
            grid = grids[0]
        extra: dict[str, Any] = {"Script": self.title()}
        for letter, axis, axis_values in zip("XYZ", axes, values):
            if axis.label != "Nothing":
                extra[f"{letter} Type"] = axis.label
                extra[f"{letter} Values"] = ", ".join(str(value) for value in axis_values)
        first = cells.get((0, 0, 0)) or done[0]
        grid_info = api.create_infotext(first, extra)
        grid_path = api.save_grid(p, grid, grid_info, first.seed)
        order = sorted(cells, key=lambda key: (key[2], key[1], key[0]))  # row by row, as in the grid
        subs = [cells[key] for key in order if cells[key].images]
        images = [grid, *(image for cell in subs for image in cell.images)]
        infotexts = [grid_info, *(text for cell in subs for text in cell.infotexts)]
        seeds = [first.seed, *(seed for cell in subs for seed in cell.seeds)]
        paths = [path for path in [grid_path, *(path for cell in subs for path in cell.paths)] if path]
        if not include_sub_images:
            images, infotexts, seeds = images[:1], infotexts[:1], seeds[:1]
        return api.Processed(
            p,
            images,
            infotexts=infotexts,
            seeds=seeds,
            paths=paths,
            warnings=[warning for cell in subs for warning in cell.warnings],
            interrupted=any(cell.interrupted for cell in cells.values()),
            index_of_first_image=1,  # the plot is a grid (the page captions it so, not by a seed)
        )
