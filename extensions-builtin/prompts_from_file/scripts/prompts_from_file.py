"""Prompts from file or textbox (A1111's built-in script, written on the plugin API).

Each non-empty line is one generation. A line is either a prompt, or options in command-line style:
    --prompt "a red apple" --negative_prompt "blurry" --steps 10 --seed 5 --sampler_name "Euler a"
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webui.plugins import api


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


# Options a line may set: every declared generation field by its name (webui/core/params.py), plus
# A1111's sampler_index and sd_model (a checkpoint).
OPTIONS: dict[str, Callable[[str], Any]] = {
    **{name: _flag if kind is bool else kind for name, kind in api.parameter_types().items()},
    "sampler_index": str,
    "sd_model": str,
}
FIELD_FOR = {"sampler_index": "sampler_name", "sd_model": "sd_model_checkpoint"}


def parse_line(line: str) -> dict[str, Any]:
    """{"prompt": line} for a plain prompt, else the --options of the line with typed values."""
    if not line.startswith("--"):
        return {"prompt": line}
    try:
        tokens = shlex.split(line)
    except ValueError as error:
        raise api.InvalidParameter(f"Prompts from file: cannot read line {line!r}: {error}") from None
    values: dict[str, Any] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        name = token[2:] if token.startswith("--") else ""
        if name not in OPTIONS:
            raise api.InvalidParameter(
                f"Prompts from file: unknown option {token!r} in line {line!r}; "
                f"options: --{', --'.join(OPTIONS)}"
            )
        if position + 1 >= len(tokens):
            raise api.InvalidParameter(f"Prompts from file: {token} needs a value in line {line!r}")
        try:
            values[name] = OPTIONS[name](tokens[position + 1])
        except ValueError:
            raise api.InvalidParameter(
                f"Prompts from file: {token} {tokens[position + 1]!r} is not valid"
            ) from None
        position += 2
    return values


def read_text(text: str, upload: Any) -> str:
    """The textbox, or the uploaded file's text when one was given (a path or bytes)."""
    if upload:
        data = (
            upload if isinstance(upload, bytes) else Path(str(getattr(upload, "name", upload))).read_bytes()
        )
        return data.decode("utf-8", errors="replace")
    return text or ""


class PromptsFromFile(api.Script):
    def title(self) -> str:
        return "Prompts from file or textbox"

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        tab = "img2img" if is_img2img else "txt2img"
        iterate = gr.Checkbox(label="Iterate seed every line", value=False, elem_id=f"{tab}_pff_iterate")
        same_seed = gr.Checkbox(
            label="Use same random seed for all lines", value=False, elem_id=f"{tab}_pff_same_seed"
        )
        position = gr.Radio(
            ["start", "end"], label="Insert prompts at the", value="start", elem_id=f"{tab}_pff_position"
        )
        text = gr.Textbox(label="List of prompt inputs", lines=3, elem_id=f"{tab}_pff_text")
        upload = gr.File(label="Upload prompt inputs", type="binary", elem_id=f"{tab}_pff_file")
        return [iterate, same_seed, position, text, upload]

    def run(
        self, p: api.Processing, iterate: bool = False, same_seed: bool = False, position: str = "start",
        text: str = "", upload: Any = None,
    ) -> api.Processed:  # fmt: skip
        lines = [line.strip() for line in read_text(text, upload).splitlines() if line.strip()]
        if not lines:
            raise api.InvalidParameter("Prompts from file: the list of prompt inputs is empty")
        jobs = [parse_line(line) for line in lines]  # every line is checked before anything runs
        if same_seed:
            api.fix_seed(p)
        images, infotexts, seeds, paths, warnings = [], [], [], [], []
        interrupted = False
        for values in jobs:
            pc = p.copy()
            for name, value in values.items():
                if name in ("prompt", "negative_prompt") and getattr(p, name):
                    base = getattr(p, name)
                    value = f"{value} {base}" if position == "start" else f"{base} {value}"
                setattr(pc, FIELD_FOR.get(name, name), value)
            processed = api.process_images(pc)
            images += processed.images
            infotexts += processed.infotexts
            seeds += processed.seeds
            paths += processed.paths
            warnings += processed.warnings
            if processed.interrupted:
                interrupted = True
                break
            if iterate and p.seed != -1:
                p.seed = p.seed + p.batch_size * p.n_iter
        return api.Processed(
            p,
            images,
            infotexts=infotexts,
            seeds=seeds,
            paths=paths,
            warnings=warnings,
            interrupted=interrupted,
        )
