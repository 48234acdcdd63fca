"""The txt2img tab: A1111's labels and layout; the handler only builds params and waits on the queue."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core import samplers
from webui.core.errors import UserError
from webui.core.params import Txt2Img
from webui.ui import extra_networks
from webui.ui.progress import wait_with_progress
from webui.ui.token_counter import TokenCounter, add_counter

if TYPE_CHECKING:
    from webui.app import App

log = logging.getLogger(__name__)


def build_tab(app: App) -> None:
    defaults = Txt2Img()
    with gr.Row():
        with gr.Column(scale=6):
            prompt = gr.Textbox(label="Prompt", lines=3, elem_id="txt2img_prompt", placeholder="Prompt")
            prompt_counter = gr.Column(min_width=0)  # the counters are filled in below, once `steps` exists
            negative = gr.Textbox(label="Negative prompt", lines=2, elem_id="txt2img_neg_prompt", placeholder="Negative prompt")
            negative_counter = gr.Column(min_width=0)
        with gr.Column(scale=1, min_width=160):
            generate = gr.Button("Generate", variant="primary", elem_id="txt2img_generate")
            with gr.Row():
                interrupt = gr.Button("Interrupt", elem_id="txt2img_interrupt", min_width=60)
                skip = gr.Button("Skip", elem_id="txt2img_skip", min_width=60)
            show_networks = gr.Button("🎴", elem_id="txt2img_extra_networks", min_width=40)
    extra_networks.build_panel(app.manager.loras, prompt, show_networks, "txt2img")
    with gr.Row():
        with gr.Column():
            with gr.Row():
                sampler = gr.Dropdown(
                    label="Sampling method",
                    choices=[s.name for s in samplers.SAMPLERS],
                    value=defaults.sampler_name,
                    elem_id="txt2img_sampling",
                )
                schedule = gr.Dropdown(
                    label="Schedule type",
                    choices=list(samplers.find_sampler(defaults.sampler_name).schedule_types),
                    value=defaults.scheduler,
                    elem_id="txt2img_scheduler",
                )
            steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Sampling steps", elem_id="txt2img_steps")
            with gr.Row():
                width = gr.Slider(64, 2048, value=defaults.width, step=8, label="Width", elem_id="txt2img_width")
                height = gr.Slider(64, 2048, value=defaults.height, step=8, label="Height", elem_id="txt2img_height")
            with gr.Row():
                n_iter = gr.Slider(1, 100, value=1, step=1, label="Batch count", elem_id="txt2img_batch_count")
                batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size", elem_id="txt2img_batch_size")
            cfg_scale = gr.Slider(1, 30, value=defaults.cfg_scale, step=0.5, label="CFG Scale", elem_id="txt2img_cfg_scale")
            with gr.Row(equal_height=True):
                seed = gr.Number(label="Seed", value=-1, precision=0, elem_id="txt2img_seed", scale=4)
                random_seed = gr.Button("🎲", elem_id="txt2img_random_seed", scale=0, min_width=40)
                reuse_seed = gr.Button("♻️", elem_id="txt2img_reuse_seed", scale=0, min_width=40)
            clip_skip = gr.Slider(
                1, 12, value=app.settings.get("CLIP_stop_at_last_layers"), step=1, label="Clip skip", elem_id="txt2img_clip_skip"
            )
        with gr.Column():
            gallery = gr.Gallery(label="Output", elem_id="txt2img_gallery", columns=4, height="auto", preview=True)
            infotext = gr.Textbox(
                label="Generation parameters", interactive=False, lines=4, elem_id="txt2img_infotext", buttons=["copy"]
            )
    counter = TokenCounter(app.manager)
    with prompt_counter:
        add_counter(counter, prompt, steps, "txt2img_token_counter", positive=True)
    with negative_counter:
        add_counter(counter, negative, steps, "txt2img_negative_token_counter", positive=False)
    infotexts = gr.State([])  # one per gallery image
    last_seed = gr.State(-1)

    def run(
        prompt: str, negative: str, sampler_name: str, scheduler: str, steps: float, cfg_scale: float,
        seed: float, width: float, height: float, n_iter: float, batch_size: float, clip_skip: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[list[Any], str, list[str], int]:
        try:
            params = Txt2Img(
                prompt=prompt, negative_prompt=negative, sampler_name=sampler_name, scheduler=scheduler,
                steps=int(steps), cfg_scale=float(cfg_scale), seed=int(seed if seed is not None else -1),
                width=int(width), height=int(height), n_iter=int(n_iter), batch_size=int(batch_size),
                clip_skip=int(clip_skip),
            )
            result = wait_with_progress(app.submit(params), progress)
        except UserError as error:
            raise gr.Error(str(error)) from error
        except Exception as error:
            log.exception("txt2img failed")
            raise gr.Error(f"Generation failed: {type(error).__name__}: {error}") from error
        for warning in result.warnings:
            gr.Warning(warning)
        images = [(image, f"Seed {s}") for image, s in zip(result.images, result.seeds)]
        return images, result.infotexts[0] if result.infotexts else "", list(result.infotexts), result.params.seed

    generate.click(
        run,
        inputs=[prompt, negative, sampler, schedule, steps, cfg_scale, seed, width, height, n_iter, batch_size, clip_skip],
        outputs=[gallery, infotext, infotexts, last_seed],
        concurrency_limit=None,  # our own job queue runs one job at a time; gradio only waits on it
    )
    prompt.submit(
        run,
        inputs=[prompt, negative, sampler, schedule, steps, cfg_scale, seed, width, height, n_iter, batch_size, clip_skip],
        outputs=[gallery, infotext, infotexts, last_seed],
        concurrency_limit=None,
    )
    interrupt.click(lambda: app.jobs.interrupt(), queue=False)
    skip.click(lambda: app.jobs.skip(), queue=False)
    sampler.change(
        lambda name: gr.Dropdown(choices=list(samplers.find_sampler(name).schedule_types), value=samplers.AUTOMATIC),
        inputs=sampler,
        outputs=schedule,
        queue=False,
    )
    random_seed.click(lambda: -1, outputs=seed, queue=False)
    reuse_seed.click(lambda last: last, inputs=last_seed, outputs=seed, queue=False)

    def show_selected(texts: list[str], event: gr.SelectData) -> str:
        return texts[event.index] if 0 <= event.index < len(texts) else ""

    gallery.select(show_selected, inputs=infotexts, outputs=infotext)
