"""The Queue tab: your jobs (how many run before each, status, progress; cancel, move up/down), then your
finished ones, this run's and earlier runs' (their images in a gallery; Re-run queues the same request
again). Everybody sees how many jobs are in the queue and ahead of theirs; only the --queue-admin user
(logged in through --gradio-auth) sees and manages other people's jobs and prompts.

The rows come from the queue service (webui/services/jobs.py); the owner of a page is ui/owners.py's.
While a job of yours waits or runs, a gr.Timer refreshes the tab; otherwise it stands still.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from webui.core.errors import InvalidParameter, UserError
from webui.core.params import GenerationParams
from webui.services import job_codec
from webui.services.generation import OverriddenRequest
from webui.services.job import Job, JobStatus
from webui.ui.errors import user_error
from webui.ui.owners import is_admin, owner_of

if TYPE_CHECKING:
    from webui.services.container import Services

TAB_ID = "queue"
REFRESH_SECONDS = 1.0
HISTORY_ROWS = 50
JOB_HEADERS = ["Ahead", "Status", "Progress", "Kind", "Prompt"]
FINISHED_HEADERS = ["Finished", "Status", "Images", "Kind", "Prompt"]
NO_SELECTION = "No job selected"


@dataclass(frozen=True)
class Viewer:
    """Who looks at the tab: the owner of the page's jobs, and whether they see everybody's."""

    owner: str | None
    admin: bool

    def sees(self, owner: str | None) -> bool:
        return self.admin or (self.owner is not None and owner == self.owner)


@dataclass(frozen=True)
class Finished:
    """A finished job as the tab lists it: from memory (this run) or from the durable queue."""

    id: str
    finished: float
    status: str
    kind: str
    owner: str | None
    queued: Any  # the queued request (Request, OverriddenRequest, …), None when it cannot be read
    job: Job | None = None  # this run's job (its result still in memory)
    files: tuple[tuple[str, str], ...] = ()  # saved images (path, infotext), from the durable queue


def generation_params(queued: Any) -> GenerationParams | None:
    """The generation a queued request makes (None: a switch, a preview, extras)."""
    params = getattr(getattr(queued, "request", queued), "params", None)  # OverriddenRequest wraps one
    return params if isinstance(params, GenerationParams) else None


def prompt_of(queued: Any) -> str:
    params = generation_params(queued)
    return params.prompt if params is not None else ""


def viewer_of(services: Services, request: gr.Request | None) -> Viewer:
    return Viewer(owner_of(request), is_admin(services, request))


def waiting_jobs(services: Services, viewer: Viewer) -> list[Job]:
    """The viewer's queued and running jobs, in the order they will run."""
    running = services.jobs.current()
    order = [*([running] if running is not None else []), *services.jobs.pending()]
    return [job for job in order if viewer.sees(job.owner)]


def finished_jobs(services: Services, viewer: Viewer) -> list[Finished]:
    """The viewer's finished jobs, newest first: this run's from memory, earlier ones from the durable
    queue (a job in both is listed once, from memory)."""
    entries = {
        job.id: Finished(job.id, job.finished or 0.0, job.status.value, job.kind, job.owner, job.params, job)
        for job in services.jobs.known()
        if job.done and viewer.sees(job.owner)
    }
    owner = None if viewer.admin else viewer.owner
    if owner is not None or viewer.admin:
        for row in services.jobs.finished_history(owner, HISTORY_ROWS):
            if row.id not in entries:
                try:
                    queued = job_codec.loads(row.params)
                except job_codec.CodecError:
                    queued = None  # listed (its images may still open), but it cannot be re-run
                entries[row.id] = Finished(
                    row.id, row.finished or 0.0, row.status, row.kind, row.owner, queued, files=row.files
                )
    newest = sorted(entries.values(), key=lambda entry: entry.finished, reverse=True)
    return newest[:HISTORY_ROWS]


def job_row(services: Services, job: Job, viewer: Viewer) -> list[Any]:
    position = services.jobs.position(job)
    running = job.status is JobStatus.RUNNING
    row = [
        "running" if running else ("" if position is None else position),
        job.status.value,
        f"{job.progress().progress * 100:.0f}%" if running else "",
        job.kind,
        prompt_of(job.params),
    ]
    return [*row, job.owner or ""] if viewer.admin else row


def finished_row(entry: Finished, viewer: Viewer) -> list[Any]:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.finished)) if entry.finished else ""
    count = len(images_of(entry, load=False))
    row = [when, entry.status, count, entry.kind, prompt_of(entry.queued)]
    return [*row, entry.owner or ""] if viewer.admin else row


def summary(services: Services, mine: Sequence[Job]) -> str:
    """How many jobs wait in all, and how many run before the viewer's next one (nobody's prompts)."""
    jobs = services.jobs
    running = jobs.current()
    total = len(jobs.pending()) + (running is not None)
    parts = [f"{total} job{'s' * (total != 1)} in the queue" + (" (1 running)" if running else "")]
    positions = [p for p in (jobs.position(job) for job in mine) if p is not None]
    if positions:
        ahead = min(positions)
        parts.append(
            "yours is running" if any(job is running for job in mine) else f"{ahead} ahead of your next job"
        )
    return " · ".join(parts)


def images_of(entry: Finished, load: bool = True) -> list[tuple[Any, str]]:
    """The finished job's images with their infotexts: this run's from its result in memory, an earlier
    run's from its saved files (those still on disk). With `load` off the files are not read (counting)."""
    if entry.job is not None:
        result = entry.job.result
        images = tuple(getattr(result, "images", ()))
        texts = tuple(getattr(result, "infotexts", ())) or ("",) * len(images)
        return list(zip(images, texts))
    present = [(path, text) for path, text in entry.files if Path(path).is_file()]
    return [(_read(path), text) for path, text in present] if load else present


def _read(path: str) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def rerun(services: Services, queued: Any, owner: str | None) -> Job:
    """Queue the same generation again for `owner` (its override_settings too)."""
    request = getattr(queued, "request", queued)
    params = generation_params(queued)
    if params is None:
        raise InvalidParameter("Only txt2img and img2img jobs can be re-run")
    overridden = isinstance(queued, OverriddenRequest)
    return services.generation.submit(
        params,
        getattr(request, "save_images", True),
        dict(queued.options) if overridden else None,
        queued.restore if overridden else True,
        owner=owner,
    )


def _table(headers: list[str], rows: list[list[Any]], admin: bool) -> dict[str, Any]:
    return {"headers": [*headers, "Owner"] if admin else headers, "data": rows}


@dataclass(frozen=True)
class View:
    """What one refresh shows: the summary line, both tables and the job ids of their rows."""

    summary: str
    jobs: dict[str, Any]
    job_ids: list[str]
    finished: dict[str, Any]
    finished_ids: list[str]
    waiting: bool  # a job of the viewer waits or runs: keep refreshing


def view(services: Services, viewer: Viewer) -> View:
    mine = waiting_jobs(services, viewer)
    done = finished_jobs(services, viewer)
    return View(
        summary(services, [job for job in mine if job.owner == viewer.owner or not viewer.admin]),
        _table(JOB_HEADERS, [job_row(services, job, viewer) for job in mine], viewer.admin),
        [job.id for job in mine],
        _table(FINISHED_HEADERS, [finished_row(entry, viewer) for entry in done], viewer.admin),
        [entry.id for entry in done],
        # also while a job has left the queue but not yet finished (the queue clears its current job
        # just before the job says it is done): the next refresh then shows it among the finished
        bool(mine) or any(not job.done and viewer.sees(job.owner) for job in services.jobs.known()),
    )


def own_waiting_job(services: Services, viewer: Viewer, job_id: str | None) -> Job:
    """The selected job, when it is the viewer's (or the viewer is the admin) and still known."""
    job = services.jobs.find(job_id) if job_id else None
    if job is None or not viewer.sees(job.owner):
        raise InvalidParameter("Select one of your jobs in the list first")
    return job


def own_finished(services: Services, viewer: Viewer, job_id: str | None) -> Finished:
    entry = next((e for e in finished_jobs(services, viewer) if e.id == job_id), None) if job_id else None
    if entry is None:
        raise InvalidParameter("Select one of your finished jobs first")
    return entry


def build_tab(services: Services, tab: gr.Tab) -> None:
    """The tab's contents (call inside `tab`); `tab`'s select refreshes it."""
    summary_box = gr.HTML("", elem_id="queue_summary")
    with gr.Row():
        refresh_button = gr.Button("🔄 Refresh", elem_id="queue_refresh", scale=0, min_width=120)
        selected_label = gr.Markdown(NO_SELECTION, elem_id="queue_selected")
    jobs_table = gr.Dataframe(
        headers=JOB_HEADERS, label="Your jobs", interactive=False, elem_id="queue_jobs", wrap=True
    )
    with gr.Row():
        up = gr.Button("Move up", elem_id="queue_move_up", min_width=80)
        down = gr.Button("Move down", elem_id="queue_move_down", min_width=80)
        cancel = gr.Button("Cancel", elem_id="queue_cancel", variant="stop", min_width=80)
    finished_table = gr.Dataframe(
        headers=FINISHED_HEADERS, label="Finished", interactive=False, elem_id="queue_history", wrap=True
    )
    rerun_button = gr.Button("Re-run", elem_id="queue_rerun")
    gallery = gr.Gallery(label="Images", elem_id="queue_gallery", columns=4, height="auto", format="png")
    infotext = gr.Textbox(label="Generation parameters", interactive=False, lines=3, elem_id="queue_infotext")
    timer = gr.Timer(REFRESH_SECONDS, active=False)
    job_ids, finished_ids = gr.State([]), gr.State([])
    shown_jobs, shown_finished = gr.State(None), gr.State(None)  # what the tables show: skip if unchanged
    selected_job, selected_finished, infotexts = gr.State(None), gr.State(None), gr.State([])

    def refresh(
        request: gr.Request, before_jobs: Any, before_finished: Any, selected: str | None
    ) -> tuple[Any, ...]:
        now = view(services, viewer_of(services, request))
        gone = selected is not None and selected not in now.job_ids  # cancelled, or finished
        return (
            None if gone else gr.skip(),
            NO_SELECTION if gone else gr.skip(),
            now.summary,
            gr.skip() if now.jobs == before_jobs else now.jobs,
            gr.skip() if now.finished == before_finished else now.finished,
            now.job_ids,
            now.finished_ids,
            now.jobs,
            now.finished,
            gr.Timer(active=now.waiting),
        )

    refreshed = dict(
        fn=refresh,
        inputs=[shown_jobs, shown_finished, selected_job],
        outputs=[
            selected_job,
            selected_label,
            summary_box,
            jobs_table,
            finished_table,
            job_ids,
            finished_ids,
            shown_jobs,
            shown_finished,
            timer,
        ],
        queue=False,
        show_progress="hidden",
    )
    for event in (tab.select, refresh_button.click, timer.tick):
        event(**refreshed)

    def select_job(ids: list[str], event: gr.SelectData) -> tuple[str | None, str]:
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        if not 0 <= row < len(ids):
            return None, NO_SELECTION
        job = services.jobs.find(ids[row])
        prompt = prompt_of(job.params) if job is not None else ""
        return ids[row], f"Selected: {job.kind if job else ''} · {prompt[:80] or ids[row][:8]}"

    jobs_table.select(select_job, inputs=job_ids, outputs=[selected_job, selected_label], queue=False)

    def act(action: str) -> Any:
        def handler(request: gr.Request, job_id: str | None) -> None:
            viewer = viewer_of(services, request)
            try:
                job = own_waiting_job(services, viewer, job_id)
                if action == "cancel":
                    services.jobs.cancel(job, "in the Queue tab")
                elif not services.jobs.move(job, -1 if action == "up" else 1):
                    raise InvalidParameter(f"That job no longer waits ({job.status.value})")
            except UserError as error:
                raise user_error(error, "Queue") from error

        return handler

    # through gradio's queue (quick, never waiting on another event): only queued events show their errors
    queued = dict(concurrency_limit=None, show_progress="hidden")
    for button, action in ((up, "up"), (down, "down"), (cancel, "cancel")):
        button.click(act(action), inputs=selected_job, **queued).then(**refreshed)

    def open_finished(request: gr.Request, ids: list[str], event: gr.SelectData) -> tuple[Any, ...]:
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        if not 0 <= row < len(ids):
            return None, [], "", []
        try:
            entry = own_finished(services, viewer_of(services, request), ids[row])
        except UserError as error:
            raise user_error(error, "Queue") from error
        shown = images_of(entry)
        texts = [text for _, text in shown]
        return entry.id, [image for image, _ in shown], texts[0] if texts else "", texts

    finished_table.select(
        open_finished,
        inputs=finished_ids,
        outputs=[selected_finished, gallery, infotext, infotexts],
        queue=False,
    )

    def show_infotext(texts: list[str], event: gr.SelectData) -> str:
        return texts[event.index] if 0 <= event.index < len(texts) else ""

    gallery.select(show_infotext, inputs=infotexts, outputs=infotext, queue=False)

    def queue_again(request: gr.Request, job_id: str | None) -> None:
        viewer = viewer_of(services, request)
        try:
            entry = own_finished(services, viewer, job_id)
            if entry.queued is None:
                raise InvalidParameter("This job's parameters cannot be read back; it cannot be re-run")
            rerun(services, entry.queued, viewer.owner)
        except UserError as error:
            raise user_error(error, "Queue") from error
        gr.Info("Queued again")

    rerun_button.click(queue_again, inputs=selected_finished, **queued).then(**refreshed)


def add_enqueue_button(services: Services, tab: Any) -> gr.Button:
    """An "Enqueue" button in a generation tab's toolbar (`tab` a ui.generation.GenerationTab): queues the
    tab's generation without waiting for it, as often as clicked (Generate follows one job at a time);
    the Queue tab shows the jobs and their images."""
    read = tab.read
    if read is None:
        raise ValueError(f"the {tab.name} tab does not say how it reads its controls")
    with tab.toolbar:
        button = gr.Button("Enqueue", elem_id=f"{tab.name}_enqueue", min_width=80, scale=0)

    def enqueue(request: gr.Request, *values: Any) -> None:
        try:
            params, overrides = read(values)
            job = services.generation.submit(
                params, override_settings=overrides or None, owner=owner_of(request)
            )
        except UserError as error:
            raise user_error(error, tab.name) from error
        ahead = services.jobs.position(job) or 0
        gr.Info(f"Queued: {ahead} ahead of yours; see the Queue tab")

    # through gradio's queue (quick, never waiting on another event): only queued events show gr.Info
    button.click(enqueue, inputs=tab.inputs, concurrency_limit=None, show_progress="hidden")
    return button
