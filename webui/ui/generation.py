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
from webui.core.errors import Interrupted, UserError
from webui.core.params import GenerationParams, Txt2Img
from webui.ui import extra_networks, seed_extras
from webui.ui.errors import user_error
from webui.ui.owners import owner_of
from webui.ui.param_widgets import from_widget, unplaced_widgets, widget
from webui.ui.progress import Following, Run, own_job, status_html, take_job_js
from webui.ui.stop_buttons import wire_stop_buttons
from webui.ui.token_counter import add_counter

if TYPE_CHECKING:
    from webui.services.container import Services

log = logging.getLogger(__name__)

# The declared fields the tab's layout places itself (sections place their own: img2img's inputs, txt2img's
# Hires. fix); other declared fields get a widget in declaration order under these
# (param_widgets.unplaced_widgets), so a field added to the schema is never missing.
PLACED = (
    "prompt", "negative_prompt", "sampler_name", "scheduler", "steps", "width", "height", "n_iter",
    "batch_size", "cfg_scale", "cfg_rescale", "seed", "clip_skip", "restore_faces", "tiling",
    *seed_extras.FIELDS,
)  # fmt: skip


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
        self, params: GenerationParams, values: Sequence[Any], owner: str | None = None
    ) -> Run | None:
        """`params` (every section applied) run this section's way (its progress in the tab's display,
        then its result), or None to let the tab queue `params` as usual. `values` are this section's
        inputs, as for apply(); `owner` owns the jobs it queues."""
        ...


@runtime_checkable
class SettingsSection(Protocol):
    """A section whose values also set options for the job alone (A1111's override_settings)."""

    def override_settings(self, values: Sequence[Any]) -> dict[str, Any]:
        """Options by name, from this section's input values (in build()'s order)."""
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
    params_type: type[GenerationParams] = Txt2Img  # what its controls make (paste reads its fields)
    inputs: list[gr.components.Component] = field(default_factory=list)  # Generate's, in order
    # the params Generate would queue for `inputs`' values, and the options its sections override
    read: Callable[[Sequence[Any]], tuple[GenerationParams, dict[str, Any]]] | None = None
    downloads: gr.Column | None = None  # under output_buttons: room for files offered for download


def model_defaults(app: Services) -> GenerationParams:
    """Txt2Img's defaults with the loaded checkpoint's own size, steps, CFG and CFG Rescale (its metadata,
    else its architecture's native size): the page opens ready for the model the server started with."""
    return app.models.model_defaults()


def build_generation_tab(
    app: Services,
    name: str,
    *,
    top: Section | None = None,
    sections: Sequence[SectionFactory] = (),
    params_type: type[GenerationParams] = Txt2Img,
) -> GenerationTab:
    """The tab's layout (A1111's labels, elem_ids `<name>_…`) and its Generate handler, which builds a
    `params_type` from the controls (the sections may turn it into another type)."""
    defaults = model_defaults(app)
    with gr.Row():
        with gr.Column(scale=6):
            # each box with its counter inside (top right, as A1111), added below once `steps` exists
            with gr.Column(min_width=0, elem_classes="wui-prompt-box") as prompt_counter:
                prompt = gr.Textbox(label="Prompt", lines=3, elem_id=f"{name}_prompt", placeholder="Prompt")
            with gr.Column(min_width=0, elem_classes="wui-prompt-box") as negative_counter:
                negative = gr.Textbox(
                    label="Negative prompt",
                    lines=2,
                    elem_id=f"{name}_neg_prompt",
                    placeholder="Negative prompt",
                )
        with gr.Column(scale=1, min_width=160):
            generate = gr.Button("Generate", variant="primary", elem_id=f"{name}_generate")
            with gr.Row():  # shown instead of Generate while a job of this page runs, as A1111
                interrupt = gr.Button("Interrupt", elem_id=f"{name}_interrupt", min_width=60, visible=False)
                skip = gr.Button("Skip", elem_id=f"{name}_skip", min_width=60, visible=False)
            with gr.Row(elem_id=f"{name}_tools") as toolbar:
                show_networks = gr.Button("🎴", elem_id=f"{name}_extra_networks", min_width=40, scale=0)
                clear_prompts = gr.Button("🗑️", elem_id=f"{name}_clear_prompt", min_width=40, scale=0)
    extra_networks.build_panel(app.models.loras, prompt, show_networks, name)
    built_sections: list[Section] = []
    section_inputs: list[list[gr.components.Component]] = []
    with gr.Row():
        with gr.Column():
            if top is not None:
                built_sections.append(top)
                section_inputs.append(top.build())
            # Labels, limits and defaults come from the schema (webui/core/params.py); elem_ids are A1111's.
            with gr.Row():
                sampler = widget(
                    params_type, "sampler_name", choices=[s.name for s in samplers.SAMPLERS],
                    value=defaults.sampler_name, elem_id=f"{name}_sampling",
                )  # fmt: skip
                schedule = widget(
                    params_type, "scheduler",
                    choices=list(samplers.find_sampler(defaults.sampler_name).schedule_types),
                    value=defaults.scheduler, elem_id=f"{name}_scheduler",
                )  # fmt: skip
            steps = widget(params_type, "steps", defaults.steps, elem_id=f"{name}_steps")
            with gr.Row():
                width = widget(params_type, "width", defaults.width, elem_id=f"{name}_width")
                height = widget(params_type, "height", defaults.height, elem_id=f"{name}_height")
                swap_size = gr.Button("⇅", elem_id=f"{name}_res_switch_btn", min_width=40, scale=0)
            with gr.Row():
                n_iter = widget(params_type, "n_iter", elem_id=f"{name}_batch_count")
                batch_size = widget(params_type, "batch_size", elem_id=f"{name}_batch_size")
            with gr.Row():
                cfg_scale = widget(params_type, "cfg_scale", defaults.cfg_scale, elem_id=f"{name}_cfg_scale")
                cfg_rescale = widget(
                    params_type, "cfg_rescale", defaults.cfg_rescale, elem_id=f"{name}_cfg_rescale",
                    info="Keeps colours from washing out at high CFG; 0.7 for v-prediction models, 0 = off",
                )  # fmt: skip
            with gr.Row(equal_height=True):
                seed = widget(params_type, "seed", elem_id=f"{name}_seed", scale=4)
                random_seed = gr.Button("🎲", elem_id=f"{name}_random_seed", scale=0, min_width=40)
                reuse_seed = gr.Button("♻️", elem_id=f"{name}_reuse_seed", scale=0, min_width=40)
                show_seed_extras = seed_extras.checkbox(name)
            extras = seed_extras.build(name, params_type, show_seed_extras)
            clip_skip = widget(
                params_type,
                "clip_skip",
                app.settings.get("CLIP_stop_at_last_layers"),
                elem_id=f"{name}_clip_skip",
            )
            with gr.Row(elem_id=f"{name}_checkboxes"):  # A1111's row of "Restore faces" and "Tiling"
                restore_faces = widget(params_type, "restore_faces", elem_id=f"{name}_restore_faces")
                tiling = widget(params_type, "tiling", elem_id=f"{name}_tiling")
            for factory in sections:
                section = factory(name)
                built_sections.append(section)
                section_inputs.append(section.build())
            # Declared fields neither the layout nor a section places get a widget here, in declaration
            # order: a field added to the schema shows up before it is given a place.
            placed = {*PLACED, *(field for section in built_sections for field in section.controls)}
            unplaced = unplaced_widgets(params_type, placed, name)
        with gr.Column():
            progress_box = gr.HTML("", elem_id=f"{name}_progress")
            # PNG: the browser (and "Send to") gets the exact pixels, not a lossy WebP copy
            gallery = gr.Gallery(
                label="Output",
                elem_id=f"{name}_gallery",
                interactive=False,  # output only: no "Drop Media Here" upload box
                columns=4,
                height="auto",
                preview=True,
                format="png",
            )
            with gr.Row(elem_id=f"{name}_output_buttons") as output_buttons:
                pass
            with gr.Column(elem_id=f"{name}_downloads", min_width=0) as downloads:
                pass  # 💾 and 🗃️ offer their files here (webui.ui.save_buttons)
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
        "restore_faces": restore_faces, "tiling": tiling,
        **extras.controls,
        **unplaced,
    }  # fmt: skip
    base_names = list(controls)
    for section in built_sections:
        controls.update(section.controls)
    inputs = [*(controls[key] for key in base_names), *(c for group in section_inputs for c in group)]

    def read_all(
        values: Sequence[Any],
    ) -> tuple[GenerationParams, dict[str, Any], list[tuple[Runner, list[Any]]]]:
        """The params (every section applied), the options the sections override, and the sections that
        may run the generation their own way, from `inputs`' values."""
        params = params_type(
            **{key: from_widget(params_type, key, value) for key, value in zip(base_names, values)}
        )
        rest = list(values[len(base_names) :])
        runners: list[tuple[Runner, list[Any]]] = []
        overrides: dict[str, Any] = {}
        for section, group in zip(built_sections, section_inputs):
            own, rest = rest[: len(group)], rest[len(group) :]
            params = section.apply(params, own)
            if isinstance(section, SettingsSection):
                overrides.update(section.override_settings(own))
            if isinstance(section, Runner):
                runners.append((section, own))
        return params, overrides, runners

    def run_job(values: Sequence[Any], owner: str | None) -> Iterator[tuple[Any, ...]]:
        """A generator: live previews go to the gallery while the job runs, then the result."""

        def start() -> Run:
            params, overrides, runners = read_all(values)
            return next(
                (
                    r
                    for runner, own in runners
                    if (r := runner.generate_instead(params, own, owner)) is not None
                ),
                None,
            ) or Following(
                app.generation.submit(params, override_settings=overrides or None, owner=owner),
                app.settings.get("live_previews_enable"),
            )

        return follow(start)

    def follow(start: Callable[[], Run]) -> Iterator[tuple[Any, ...]]:
        """The updates of the Run `start()` begins (or finds): its progress, then its result."""
        try:
            running = start()
            for shown in running:
                # each image as its batch finishes, then the running batch's live preview
                gallery_now = [(image, f"Seed {seed}") for image, _, seed in shown.finished]
                if shown.preview is not None:
                    gallery_now.append((shown.preview, "Preview"))
                yield gallery_now or gr.skip(), gr.skip(), gr.skip(), gr.skip(), shown.html
            result = running.result()
        except Interrupted as stopped:  # taken out of the queue before it ran (Interrupt, the Queue tab)
            gr.Info(f"Job {stopped}")
            yield (*(gr.skip(),) * 4, status_html("Interrupted"))
            return
        except UserError as error:
            raise user_error(error, name) from error
        except Exception as error:
            log.exception("%s failed", name)
            raise gr.Error(f"Generation failed: {type(error).__name__}: {error}") from error
        for warning in result.warnings:
            gr.Warning(warning)
        if result.interrupted:
            gr.Info("Interrupted")
        first = result.index_of_first_image  # a batch grid comes first
        captions = ["Grid" if i < first else f"Seed {s}" for i, s in enumerate(result.seeds)]
        images = list(zip(result.images, captions))
        yield (
            images,
            result.infotexts[0] if result.infotexts else "",
            list(result.infotexts),
            result.params.seed,
            status_html("Interrupted") if result.interrupted else "",
        )

    results = [gallery, infotext, infotexts, last_seed, progress_box]
    buttons = [generate, interrupt, skip]

    def show_buttons(running: bool) -> tuple[gr.Button, gr.Button, gr.Button]:
        return gr.Button(visible=not running), gr.Button(visible=running), gr.Button(visible=running)

    unchanged, keep_buttons = (gr.skip(),) * len(results), (gr.skip(),) * len(buttons)

    def with_buttons(updates: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """`updates`; Generate comes back when they end, also with an error (gradio stops an event chain
        at an error, so this cannot be a `.then` step)."""
        try:
            for update in updates:
                yield (*update, *keep_buttons)
        except gr.Error:
            yield (*unchanged, *show_buttons(False))
            raise
        yield (*unchanged, *show_buttons(False))

    def run(request: gr.Request, *values: Any) -> Iterator[tuple[Any, ...]]:
        yield from with_buttons(run_job(values, owner_of(request)))

    def reattach(request: gr.Request, job_id: str) -> Iterator[tuple[Any, ...]]:
        """The page was reloaded while it showed job `job_id`: follow it again if it is this page's owner's
        (its progress, then its results, once); else nothing."""
        job = own_job(app.jobs, job_id, owner_of(request), name)
        if job is None:
            yield (*unchanged, *keep_buttons)
            return
        yield (*unchanged, *show_buttons(not job.done))
        yield from with_buttons(follow(lambda: Following(job, app.settings.get("live_previews_enable"))))

    # While a job runs, Generate gives way to Interrupt and Skip (A1111): a click is never silently dropped.
    # Our own job queue runs one job at a time; gradio only waits on it. The progress display is ours.
    for trigger in (generate.click, prompt.submit):
        trigger(lambda: show_buttons(True), outputs=buttons, queue=False).then(
            run, inputs=inputs, outputs=[*results, *buttons], concurrency_limit=None, show_progress="hidden"
        )

    # On page load (triggers=None: load, and changes of the hidden box, which never changes) the tab
    # takes the job it showed before a reload from the browser (javascript/restore_progress.js).
    shown_job = gr.Textbox(visible=False)
    gr.on(
        None, reattach, inputs=shown_job, outputs=[*results, *buttons], js=take_job_js(name),
        concurrency_limit=None, show_progress="hidden",
    )  # fmt: skip

    wire_stop_buttons(app.jobs, name, interrupt, skip)
    random_seed.click(lambda: -1, outputs=seed, queue=False)
    clear_prompts.click(lambda: ("", ""), outputs=[prompt, negative], queue=False)
    swap_size.click(lambda w, h: (h, w), inputs=[width, height], outputs=[width, height], queue=False)
    reuse_seed.click(lambda last: last, inputs=last_seed, outputs=seed, queue=False)
    seed_extras.wire(extras, infotext)

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
        params_type=params_type,
        inputs=inputs,
        read=lambda values: read_all(values)[:2],
        downloads=downloads,
    )
