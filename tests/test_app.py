"""The App as composition root: it builds the services and wires them to one job queue; work submitted
through the services is done (saved with its infotext, models switched), with each job's own options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import make_app, make_data_dir
from webui.core.params import GenerationParams, Txt2Img
from webui.core.requests import Request
from webui.services.dispatch import JobRunner
from webui.services.generation import GenerationService, OverriddenRequest
from webui.services.jobs import JobQueue
from webui.services.models import ModelsService
from webui.services.outputs import read_infotext
from webui.services.scripting import ProcessingContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = Txt2Img(prompt="a red ball", width=64, height=64, steps=2, seed=5)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[Any]:
    from tools.tiny_models import save_tiny_checkpoint

    other = save_tiny_checkpoint(tmp_path_factory.mktemp("other") / "other-model.safetensors", "sd1", seed=1)
    app = make_app(make_data_dir(tmp_path_factory.mktemp("data"), tiny_sd1_file, other))
    app.services.models.select_checkpoint("tiny-sd1")
    yield app
    app.jobs.stop()


def test_app_builds_its_services_on_one_queue(app: Any) -> None:
    services = app.services
    assert isinstance(services.models, ModelsService) and isinstance(services.generation, GenerationService)
    assert services.generation.models is services.models
    assert services.jobs is services.generation.jobs is services.models.jobs is services.controlnet.jobs
    assert services.settings is app.settings and services.plugins is app.plugins
    assert services.models.manager is app.manager


def test_generation_through_the_service_is_saved_with_its_infotext(app: Any) -> None:
    result = app.services.generation.generate(SMALL)
    assert len(result.paths) == 1
    path = Path(result.paths[0])
    assert path.is_file() and path.is_relative_to(app.paths.data_dir / "outputs" / "txt2img-images")
    assert read_infotext(Image.open(path)) == result.infotexts[0]
    assert "Seed: 5," in result.infotexts[0] and "Model: tiny-sd1" in result.infotexts[0]
    assert result.sd_model_name == "tiny-sd1"


def test_models_service_switches_the_checkpoint_and_remembers_it(app: Any) -> None:
    models = app.services.models
    try:
        title = models.select_checkpoint("other-model")
        assert title.startswith("other-model.safetensors [") and models.current_title() == title
        assert app.settings.get("sd_model_checkpoint") == title
        assert app.services.generation.generate(SMALL, save_images=False).sd_model_name == "other-model"
    finally:
        models.select_checkpoint("tiny-sd1")
    assert models.current_entry().model_name == "tiny-sd1"


class CountsLoaded:
    """The scripts around a job (the App's extensions), noting how many checkpoints are loaded while
    the job runs."""

    def __init__(self, plugins: Any, models: ModelsService) -> None:
        self.plugins = plugins
        self.models = models
        self.loaded: list[int] = []

    def check(self, params: GenerationParams, kind: str) -> None:
        self.plugins.check(params, kind)

    def process(self, params: GenerationParams, kind: str, context: ProcessingContext) -> Any:
        result = self.plugins.process(params, kind, context)
        self.loaded.append(len(self.models.manager.loaded_paths()))
        return result

    def notice_model(self, loaded: Any) -> None:
        self.plugins.notice_model(loaded)


def test_a_checkpoint_limit_override_holds_for_its_job(app: Any) -> None:
    """sd_checkpoints_limit in override_settings keeps both checkpoints loaded during that job only."""
    app.update_options({"sd_checkpoints_limit": 1, "sd_checkpoints_keep_in_cpu": False})
    scripts = CountsLoaded(app.plugins, app.models)
    runner = JobRunner()
    jobs = JobQueue(runner)
    generation = GenerationService(app.settings, app.styles, app.models, jobs, scripts, app.paths.data_dir)
    runner.register(Request, generation.run)
    runner.register(OverriddenRequest, generation.run_overridden)
    jobs.start()
    try:
        generation.submit(SMALL, save_images=False).wait()
        overrides = {"sd_checkpoints_limit": 2, "sd_model_checkpoint": "other-model"}
        generation.submit(SMALL, False, overrides).wait()
        assert scripts.loaded == [1, 2]
        # afterwards the saved limit holds again, and the checkpoint is put back
        assert len(app.manager.loaded_paths()) == 1
        assert app.models.current_entry().model_name == "tiny-sd1"
        assert app.manager.device_slots == 1
    finally:
        jobs.stop()
        app.update_options({"sd_checkpoints_limit": 1, "sd_checkpoints_keep_in_cpu": True})
