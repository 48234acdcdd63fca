"""The one progress display of a generation tab: a bar and a line such as
"Batch 1/2 · step 7/20 · 35% · 12s elapsed · ETA 16m 50s", updated while a queued job runs.

gradio's own progress bar is not used for generations: it shows on every output, restarts its timer on
each live preview and prints the ETA in raw seconds.

The display carries its job's id (`data-job`): javascript/restore_progress.js keeps it while the job is
shown, so a reloaded page follows the same job again (`own_job`, A1111's "restore progress")."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import gradio as gr

from webui.services.job import Job, JobStatus
from webui.services.jobs import JobQueue

POLL_SECONDS = 0.25
# Weight of the newest estimate of the finish moment: steps vary (the first ones load, decode at the end),
# so the raw estimate jumps; this keeps the shown ETA steady without lagging far behind.
SMOOTHING = 0.2


def format_duration(seconds: float) -> str:
    """A1111's style: "45s", "16m 50s", "1h 02m"."""
    total = max(int(round(seconds)), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@dataclass
class EtaSmoother:
    """Smooths the predicted finish moment (not the seconds left, which fall by themselves)."""

    finish: float | None = None

    def update(self, now: float, eta: float) -> float:
        predicted = now + eta
        self.finish = (
            predicted if self.finish is None else self.finish + SMOOTHING * (predicted - self.finish)
        )
        return max(self.finish - now, 0.0)


@dataclass(frozen=True)
class Snapshot:
    """What the display shows at one poll, and the newest live preview (None: none new)."""

    html: str
    preview: Any = None
    finished: tuple[tuple[Any, str, int], ...] = ()  # the images finished so far (image, infotext, seed)


def progress_html(text: str, fraction: float, job_id: str = "") -> str:
    percent = min(max(fraction, 0.0), 1.0) * 100
    job = f' data-job="{html.escape(job_id)}"' if job_id else ""
    return (
        f'<div class="wui-progress"{job}><div class="wui-progress-bar" style="width:{percent:.1f}%"></div>'
        f'<span class="wui-progress-text">{html.escape(text)}</span></div>'
    )


def status_html(text: str) -> str:
    """A one-line message in the progress display's place ("Interrupted", …)."""
    return f'<div class="wui-progress-status">{html.escape(text)}</div>'


def describe(
    job: Job, elapsed: float, smoother: EtaSmoother, now: float, label: str = ""
) -> tuple[str, float]:
    """The progress line and fraction of a running job (`label` first: img2img Batch's file)."""
    view = job.progress()
    state = view.state
    parts = [label] if label else []
    if state["sampling_steps"] <= 0:  # loading the model, encoding the prompt: no step to count yet
        return " · ".join([*parts, f"Starting… {format_duration(elapsed)} elapsed"]), 0.0
    if state["job_count"] > 1:
        parts.append(f"Batch {state['job_no'] + 1}/{state['job_count']}")
    parts += [
        f"step {state['sampling_step']}/{state['sampling_steps']}",
        f"{view.progress * 100:.0f}%",
        f"{format_duration(elapsed)} elapsed",
    ]
    if view.progress > 0:
        parts.append(f"ETA {format_duration(smoother.update(now, view.eta_relative))}")
    return " · ".join(parts), view.progress


def watch(job: Job, show_previews: bool = False, label: str = "") -> Iterator[Snapshot]:
    """A snapshot whenever the display, the live preview or the finished images change, until the job is
    done (the engine makes a preview every "show_progress_every_n_steps" steps; with `show_previews` off
    none is passed on). `label` starts the line ("File 2/5: a.png")."""
    smoother = EtaSmoother()
    started: float | None = None
    last_html, last_preview, last_count = "", None, 0
    while not job.done:
        now = time.monotonic()
        preview = None
        if job.status is JobStatus.QUEUED:
            shown = progress_html(" · ".join(filter(None, [label, "Waiting in queue…"])), 0.0, job.id)
        else:
            started = now if started is None else started
            text, fraction = describe(job, now - started, smoother, now, label)
            shown = progress_html(text, fraction, job.id)
            current = job.progress().current_preview
            if show_previews and current is not None and current is not last_preview:
                preview = last_preview = current
        finished = job.finished_images()
        if shown != last_html or preview is not None or len(finished) != last_count:
            last_html, last_count = shown, len(finished)
            yield Snapshot(shown, preview, tuple(finished))
        time.sleep(POLL_SECONDS)


class Run(Protocol):
    """What a generation tab follows: snapshots while it runs (iterate once), then its result."""

    def __iter__(self) -> Iterator[Snapshot]: ...

    def result(self) -> Any: ...


@dataclass(frozen=True)
class Following:
    """One queued job as a Run."""

    job: Job
    show_previews: bool = False

    def __iter__(self) -> Iterator[Snapshot]:
        return watch(self.job, self.show_previews)

    def result(self) -> Any:
        return self.job.wait()


def own_job(jobs: JobQueue, job_id: str, owner: str | None, kind: str) -> Job | None:
    """The `kind` job `job_id` when `owner` queued it (a reloaded page following its job again); None for
    an empty, unknown, forgotten or someone else's id."""
    job = jobs.find(job_id) if job_id else None
    if job is None or owner is None or job.owner != owner or job.kind != kind:
        return None
    return job


def take_job_js(tab: str) -> str:
    """The page-load step that hands the server the job `tab` was showing before the reload (and forgets
    it there: a finished job's results are shown once)."""
    return f"() => webuiTakeJob({json.dumps(tab)})"


def wait_with_progress(job: Job, progress: gr.Progress) -> Any:
    """Wait on `job` feeding gradio's progress bar (Extras, which shows gradio's bar)."""
    while not job.done:
        view = job.progress()
        progress(view.progress, desc="Waiting in queue…" if job.status is JobStatus.QUEUED else None)
        time.sleep(POLL_SECONDS)
    return job.wait()
