"""What the txt2img and img2img tabs share: the prompt row, the sampler/size/seed controls, the output
panel, and the *sections* that add controls to a tab and turn their values into params.

A section is how everything beyond txt2img's own controls reaches a generation: img2img's input images
and inpaint controls (rendered at the top of the settings column), ControlNet units and scripts (at the
bottom). The handler builds a Txt2Img from the common controls, then lets each section rewrite it in
order (img2img's section turns it into an Img2Img), then queues it. No generation logic lives here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import gradio as gr

from webui.core import samplers
from webui.core.errors import UserError
from webui.core.params import GenerationParams, Result, Txt2Img
from webui.ui import extra_networks
from webui.ui.progress import watch
from webui.ui.token_counter import add_counter

if TYPE_CHECKING:
    from webui.services.container import Services

log = logging.getLogger(__name__)


class Section(Protocol):
    """Controls of one tab that change the params before they are queued."""

    def build(self) -> list[gr.components.Component]:
        """Render the controls (called inside the layout where they belong); return the handler inputs."""
        ...

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        """The params changed by this section's input values (in build()'s order)."""
        ...

    @property
    def controls(self) -> Mapping[str, gr.components.Component]:
        """Params field name → component, for "send to" and paste (empty when none)."""
        ...


# Builds a section for one tab ("txt2img" or "img2img"); blocks.py passes these to both tabs.
SectionFactory = Callable[[str], Section]


@runtime_checkable
class Runner(Protocol):
    """A section that can run the generation itself instead of the tab's one queued job (img2img's Batch
    queues one job per input file)."""

    def generate_instead(
        self, params: GenerationParams, values: Sequence[Any], progress: gr.Progress
    ) -> Result | None:
        """The result for `params` (every section applied) run this section's way, or None to let the
        tab queue `params` as usual. `values` are this section's inputs, as for apply()."""
        ...


@dataclass
class GenerationTab:
    """The components of a built tab that other parts of the page wire to (send to, paste, styles)."""

    name: str
    controls: dict[str, gr.components.Component]  # params field name → component
    toolbar: gr.Row  # under the Generate button: room for paste ↙, styles …
    output_buttons: gr.Row  # under the gallery: room for "Send to …"
    gallery: gr.Gallery
    infotext: gr.Textbox
    infotexts: gr.State  # one infotext per gallery image
    sections: list[Section] = field(default_factory=list)


def model_defaults(app: Services) -> GenerationParams:
    """Txt2Img's defaults with the loaded checkpoint's own size, steps, CFG and CFG Rescale (its metadata,
    else its architecture's native size): the page opens ready for the model the server started with."""
    return app.models.model_defaults()


def build_generation_tab(
    app: Services, name: str, *, top: Section | None = None, sections: Sequence[SectionFactory] = ()
) -> GenerationTab:
    """The tab's layout (A1111's labels, elem_ids `<name>_…`) and its Generate handler."""
    defaults = model_defaults(app)
    with gr.Row():
        with gr.Column(scale=6):
            prompt = gr.Textbox(label="Prompt", lines=3, elem_id=f"{name}_prompt", placeholder="Prompt")
            prompt_counter = gr.Column(min_width=0)  # the counters are filled in below, once `steps` exists
            negative = gr.Textbox(
                label="Negative prompt", lines=2, elem_id=f"{name}_neg_prompt", placeholder="Negative prompt"
            )
            negative_counter = gr.Column(min_width=0)
        with gr.Column(scale=1, min_width=160):
            generate = gr.Button("Generate", variant="primary", elem_id=f"{name}_generate")
            with gr.Row():
                interrupt = gr.Button("Interrupt", elem_id=f"{name}_interrupt", min_width=60)
                skip = gr.Button("Skip", elem_id=f"{name}_skip", min_width=60)
            with gr.Row(elem_id=f"{name}_tools") as toolbar:
                show_networks = gr.Button("🎴", elem_id=f"{name}_extra_networks", min_width=40, scale=0)
    extra_networks.build_panel(app.models.loras, prompt, show_networks, name)
    built_sections: list[Section] = []
    section_inputs: list[list[gr.components.Component]] = []
    with gr.Row():
        with gr.Column():
            if top is not None:
                built_sections.append(top)
                section_inputs.append(top.build())
            with gr.Row():
                sampler = gr.Dropdown(
                    label="Sampling method",
                    choices=[s.name for s in samplers.SAMPLERS],
                    value=defaults.sampler_name,
                    elem_id=f"{name}_sampling",
                )
                schedule = gr.Dropdown(
                    label="Schedule type",
                    choices=list(samplers.find_sampler(defaults.sampler_name).schedule_types),
                    value=defaults.scheduler,
                    elem_id=f"{name}_scheduler",
                )
            steps = gr.Slider(
                1, 150, value=defaults.steps, step=1, label="Sampling steps", elem_id=f"{name}_steps"
            )
            with gr.Row():
                width = gr.Slider(
                    64, 2048, value=defaults.width, step=8, label="Width", elem_id=f"{name}_width"
                )
                height = gr.Slider(
                    64, 2048, value=defaults.height, step=8, label="Height", elem_id=f"{name}_height"
                )
            with gr.Row():
                n_iter = gr.Slider(
                    1, 100, value=1, step=1, label="Batch count", elem_id=f"{name}_batch_count"
                )
                batch_size = gr.Slider(
                    1, 8, value=1, step=1, label="Batch size", elem_id=f"{name}_batch_size"
                )
            with gr.Row():
                cfg_scale = gr.Slider(
                    1, 30, value=defaults.cfg_scale, step=0.5, label="CFG Scale", elem_id=f"{name}_cfg_scale"
                )
                cfg_rescale = gr.Slider(
                    0,
                    1,
                    value=defaults.cfg_rescale,
                    step=0.05,
                    label="CFG Rescale",
                    elem_id=f"{name}_cfg_rescale",
                    info="for zero-terminal-SNR models (0.7); 0: plain CFG",
                )
            with gr.Row(equal_height=True):
                seed = gr.Number(label="Seed", value=-1, precision=0, elem_id=f"{name}_seed", scale=4)
                random_seed = gr.Button("🎲", elem_id=f"{name}_random_seed", scale=0, min_width=40)
                reuse_seed = gr.Button("♻️", elem_id=f"{name}_reuse_seed", scale=0, min_width=40)
            clip_skip = gr.Slider(
                1,
                12,
                value=app.settings.get("CLIP_stop_at_last_layers"),
                step=1,
                label="Clip skip",
                elem_id=f"{name}_clip_skip",
            )
            for factory in sections:
                section = factory(name)
                built_sections.append(section)
                section_inputs.append(section.build())
        with gr.Column():
            # PNG: the browser (and "Send to") gets the exact pixels, not a lossy WebP copy
            gallery = gr.Gallery(
                label="Output",
                elem_id=f"{name}_gallery",
                columns=4,
                height="auto",
                preview=True,
                format="png",
            )
            with gr.Row(elem_id=f"{name}_output_buttons") as output_buttons:
                pass
            infotext = gr.Textbox(
                label="Generation parameters",
                interactive=False,
                lines=4,
                elem_id=f"{name}_infotext",
                buttons=["copy"],
            )
    counter = app.tokens
    with prompt_counter:
        add_counter(counter, prompt, steps, f"{name}_token_counter", positive=True)
    with negative_counter:
        add_counter(counter, negative, steps, f"{name}_negative_token_counter", positive=False)
    infotexts = gr.State([])
    last_seed = gr.State(-1)

    controls: dict[str, gr.components.Component] = {
        "prompt": prompt, "negative_prompt": negative, "sampler_name": sampler, "scheduler": schedule,
        "steps": steps, "cfg_scale": cfg_scale, "seed": seed, "width": width, "height": height,
        "n_iter": n_iter, "batch_size": batch_size, "clip_skip": clip_skip, "cfg_rescale": cfg_rescale,
    }  # fmt: skip
    base_names = list(controls)
    for section in built_sections:
        controls.update(section.controls)
    inputs = [*(controls[key] for key in base_names), *(c for group in section_inputs for c in group)]

    def run(*values: Any, progress: gr.Progress = gr.Progress()) -> Iterator[tuple[Any, ...]]:
        """A generator: live previews go to the gallery while the job runs, then the result."""
        try:
            params = _base_params(dict(zip(base_names, values)))
            rest = list(values[len(base_names) :])
            runners: list[tuple[Runner, list[Any]]] = []
            for section, group in zip(built_sections, section_inputs):
                own, rest = rest[: len(group)], rest[len(group) :]
                params = section.apply(params, own)
                if isinstance(section, Runner):
                    runners.append((section, own))
            result = next(
                (
                    r
                    for runner, own in runners
                    if (r := runner.generate_instead(params, own, progress)) is not None
                ),
                None,
            )
            if result is None:
                job = app.generation.submit(params)
                for preview in watch(job, progress, app.settings.get("live_previews_enable")):
                    yield [(preview, "Preview")], gr.skip(), gr.skip(), gr.skip()
                result = job.wait()
        except UserError as error:
            raise gr.Error(str(error)) from error
        except Exception as error:
            log.exception("%s failed", name)
            raise gr.Error(f"Generation failed: {type(error).__name__}: {error}") from error
        for warning in result.warnings:
            gr.Warning(warning)
        images = [(image, f"Seed {s}") for image, s in zip(result.images, result.seeds)]
        yield (
            images,
            result.infotexts[0] if result.infotexts else "",
            list(result.infotexts),
            result.params.seed,
        )

    outputs = [gallery, infotext, infotexts, last_seed]
    # our own job queue runs one job at a time; gradio only waits on it
    generate.click(run, inputs=inputs, outputs=outputs, concurrency_limit=None)
    prompt.submit(run, inputs=inputs, outputs=outputs, concurrency_limit=None)
    interrupt.click(lambda: app.jobs.interrupt(), queue=False)
    skip.click(lambda: app.jobs.skip(), queue=False)
    sampler.change(
        lambda sampler_name: gr.Dropdown(
            choices=list(samplers.find_sampler(sampler_name).schedule_types), value=samplers.AUTOMATIC
        ),
        inputs=sampler,
        outputs=schedule,
        queue=False,
    )
    random_seed.click(lambda: -1, outputs=seed, queue=False)
    reuse_seed.click(lambda last: last, inputs=last_seed, outputs=seed, queue=False)

    def show_selected(texts: list[str], event: gr.SelectData) -> str:
        return texts[event.index] if 0 <= event.index < len(texts) else ""

    gallery.select(show_selected, inputs=infotexts, outputs=infotext)
    return GenerationTab(
        name=name,
        controls=controls,
        toolbar=toolbar,
        output_buttons=output_buttons,
        gallery=gallery,
        infotext=infotext,
        infotexts=infotexts,
        sections=built_sections,
    )


def _base_params(values: dict[str, Any]) -> GenerationParams:
    seed = values["seed"]
    return Txt2Img(
        prompt=values["prompt"],
        negative_prompt=values["negative_prompt"],
        sampler_name=values["sampler_name"],
        scheduler=values["scheduler"],
        steps=int(values["steps"]),
        cfg_scale=float(values["cfg_scale"]),
        cfg_rescale=float(values["cfg_rescale"]),
        seed=int(seed if seed is not None else -1),
        width=int(values["width"]),
        height=int(values["height"]),
        n_iter=int(values["n_iter"]),
        batch_size=int(values["batch_size"]),
        clip_skip=int(values["clip_skip"]),
    )
