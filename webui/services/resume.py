"""A job that was running when the server stopped (SIGKILL, crash) runs again from its first batch not
saved whole: the batches on disk are kept and not made again, the rest is made with the seeds it would
have had, and the job's result holds both, as if it had never stopped."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from webui.core import infotext
from webui.core.params import GenerationParams
from webui.core.requests import Result

log = logging.getLogger(__name__)

SavedFile = tuple[str, str]  # (path, infotext), in the job's image order


@dataclass(frozen=True)
class Resumed:
    params: GenerationParams  # the batches still to make, with the seeds they would have had
    kept: Result  # the images of the batches saved whole before the stop, read back from their files


def resume(params: GenerationParams, saved: Sequence[SavedFile]) -> Resumed | None:
    """How to finish a job that saved `saved` before it stopped; None to run it whole (nothing kept).

    A batch cut short in the middle of its saving is made again whole: its saved files are removed first,
    so no image is on disk twice (it comes out the same: same seeds)."""
    whole = len(saved) // params.batch_size
    for cut_short, _ in saved[whole * params.batch_size :]:
        Path(cut_short).unlink(missing_ok=True)
    kept_files = [(Path(path), text) for path, text in saved[: whole * params.batch_size]]
    if not kept_files or any(not path.is_file() for path, _ in kept_files):
        return None  # a kept file was removed meanwhile: make the whole job again
    first = infotext.parse(kept_files[0][1])
    seed = int(first.get("Seed", params.seed))  # a random seed (-1) was resolved by the first run
    subseed = int(first.get("Variation seed", params.subseed))
    varied = params.subseed_strength != 0
    done = whole * params.batch_size
    seeds = [seed + (0 if varied else index) for index in range(done)]
    images = []
    for kept_file, _ in kept_files:
        with Image.open(kept_file) as image:
            images.append(image.copy())
    kept = Result(
        params=params.replace(seed=seed),
        images=tuple(images),
        infotexts=tuple(text for _, text in kept_files),
        seeds=tuple(seeds),
        subseeds=tuple(subseed + index for index in range(done)),
        paths=tuple(str(path) for path, _ in kept_files),
    )
    rest = params.replace(
        n_iter=params.n_iter - whole,
        seed=seed if varied else seed + done,
        subseed=subseed + done,
    )
    log.info(
        "Resuming a job: %d image(s) kept from before the restart, %d batch(es) to make", done, rest.n_iter
    )
    return Resumed(rest, kept)


def combined(kept: Result, rest: Result | None) -> Result:
    """The resumed job's result: the kept images, then those made now (None: nothing was left to make)."""
    if rest is None:
        return kept
    return dataclasses.replace(
        rest,
        params=kept.params,
        images=kept.images + rest.images,
        infotexts=kept.infotexts + rest.infotexts,
        seeds=kept.seeds + rest.seeds,
        subseeds=kept.subseeds + rest.subseeds if rest.subseeds else (),
        paths=kept.paths + rest.paths,
    )
