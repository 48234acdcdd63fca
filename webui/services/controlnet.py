"""ControlNet for the UI and API: the models found, the preprocessors with their sliders, and preprocessor
previews run as queued jobs (so they never race a generation for the device, and Interrupt stops them)."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from webui.core.control_unit import ControlUnit
from webui.core.errors import InvalidParameter
from webui.engine.controlnet import preprocessors
from webui.engine.controlnet.library import ControlNetLibrary
from webui.engine.controlnet.preprocessors import Preprocessor, Slider
from webui.services.job import Job
from webui.services.jobs import JobQueue


@dataclass(frozen=True)
class Preprocess:
    """A queued preview: `module`'s map of each image. -1: the preprocessor's own default (its slider)."""

    module: str
    images: tuple[Image.Image, ...]
    processor_res: int = -1
    threshold_a: float = -1
    threshold_b: float = -1


@dataclass(frozen=True)
class PreprocessResult:
    images: tuple[Image.Image, ...]
    interrupted: bool = False


class ControlNetService:
    def __init__(self, library: ControlNetLibrary, jobs: JobQueue) -> None:
        self.library = library
        self.jobs = jobs

    resolution: Slider = preprocessors.RESOLUTION

    def titles(self) -> list[str]:
        return self.library.titles()

    def refresh(self) -> list[str]:
        self.library.refresh()
        return self.library.titles()

    @staticmethod
    def module_list(alias_names: bool = False) -> list[str]:
        return preprocessors.module_list(alias_names)

    @staticmethod
    def preprocessors() -> tuple[Preprocessor, ...]:
        return tuple(preprocessors.PREPROCESSORS.values())

    @staticmethod
    def find(module: str) -> Preprocessor:
        """The preprocessor by name or UI label; InvalidParameter naming the known ones otherwise."""
        return preprocessors.find(module)

    def submit(self, request: Preprocess, owner: str | None = None) -> Job:
        self.find(request.module)  # an unknown module fails before it takes a place in the queue
        if not request.images:
            raise InvalidParameter("No image to preprocess: send at least one")
        for image in request.images:  # sliders and the processing size (bounded) checked before queueing
            unit = ControlUnit(
                module=request.module,
                processor_res=request.processor_res,
                threshold_a=request.threshold_a,
                threshold_b=request.threshold_b,
            )
            preprocessors.resolve(unit, image.size, image.size)
        return self.jobs.submit(request, kind="preprocess", owner=owner)

    def detect(self, request: Preprocess) -> PreprocessResult:
        result: PreprocessResult = self.submit(request).wait()
        return result

    def run(self, request: Preprocess, job: Job) -> PreprocessResult:
        """On the job worker: one map per image; Interrupt stops before the next image."""
        job.set_batches(len(request.images))
        maps = []
        for index, image in enumerate(request.images):
            if job.interrupted:
                break
            if index:
                job.next_batch()
            maps.append(
                preprocessors.detect(
                    request.module,
                    image,
                    request.processor_res,
                    request.threshold_a,
                    request.threshold_b,
                    self.library.annotators,
                )
            )
        return PreprocessResult(images=tuple(maps), interrupted=len(maps) < len(request.images))
