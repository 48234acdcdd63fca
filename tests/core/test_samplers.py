"""A1111 sampler and schedule-type names → diffusers scheduler class + config overrides (pure data)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from webui.core import infotext, samplers
from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img


def test_samplers_in_a1111_order_with_aliases_and_options() -> None:
    assert [s.name for s in samplers.SAMPLERS] == [
        "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
        "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DDIM", "PLMS", "UniPC", "LCM",
    ]  # fmt: skip
    assert samplers.find_sampler("Euler a").aliases == ("k_euler_a", "k_euler_ancestral")
    assert samplers.find_sampler("Euler a").options == {}
    assert samplers.find_sampler("DPM++ 2M").options == {"scheduler": "karras"}
    assert samplers.find_sampler("DPM++ 3M SDE").options == {"scheduler": "exponential"}


def test_schedule_types_as_a1111_lists_them() -> None:
    assert [(s.name, s.label) for s in samplers.SCHEDULE_TYPES] == [
        ("automatic", "Automatic"), ("uniform", "Uniform"), ("karras", "Karras"),
        ("exponential", "Exponential"), ("polyexponential", "Polyexponential"),
        ("sgm_uniform", "SGM Uniform"), ("kl_optimal", "KL Optimal"),
        ("align_your_steps", "Align Your Steps"),
        ("simple", "Simple"), ("normal", "Normal"), ("ddim", "DDIM"), ("beta", "Beta"),
    ]  # fmt: skip
    assert samplers.SCHEDULE_TYPES[5].aliases == ("SGMUniform",)


@pytest.mark.parametrize(
    ("name", "scheduler", "expected"),
    [
        ("DPM++ 2M", "Automatic", ("DPM++ 2M", "Automatic")),
        ("DPM++ 2M Karras", "Automatic", ("DPM++ 2M", "Automatic")),  # Karras is its default
        ("DPM++ SDE Karras", "Automatic", ("DPM++ SDE", "Automatic")),
        ("DPM++ 2M SDE Karras", "Automatic", ("DPM++ 2M SDE", "Karras")),  # its default is Exponential
        ("DPM++ 2M SDE Exponential", "Automatic", ("DPM++ 2M SDE", "Automatic")),
        ("DPM++ 2M SDE Heun Karras", "Automatic", ("DPM++ 2M SDE Heun", "Karras")),
        ("LMS Karras", "Automatic", ("LMS", "Karras")),
        ("DPM2 a Karras", "Automatic", ("DPM2 a", "Automatic")),
        ("Euler a", "Automatic", ("Euler a", "Automatic")),
        ("Euler SGMUniform", "Automatic", ("Euler", "SGM Uniform")),
        ("euler", "karras", ("Euler", "Karras")),
        ("k_dpmpp_2m", "exponential", ("DPM++ 2M", "Exponential")),
        ("DPM++ 2M Exponential", "Karras", ("DPM++ 2M", "Exponential")),  # the suffix wins, as A1111
        ("UniPC", "", ("UniPC", "Automatic")),
    ],
)
def test_split_sampler_name_as_a1111(name: str, scheduler: str, expected: tuple[str, str]) -> None:
    assert samplers.split_sampler_name(name, scheduler) == expected


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(
        InvalidParameter, match=r"Unknown sampler 'DPM fast'\. Valid samplers: DPM\+\+ 2M, .*LCM"
    ):
        samplers.resolve("DPM fast")
    with pytest.raises(
        InvalidParameter, match=r"Unknown schedule type 'Turbo'\. Valid .*Automatic, .*KL Optimal, .*Beta"
    ):
        samplers.resolve("Euler", "Turbo")


@pytest.mark.parametrize(
    ("name", "scheduler", "sigmas", "overrides"),
    [
        ("Euler a", "Karras", "karras", {"timestep_spacing": "linspace"}),  # no Karras config: computed
        ("Euler a", "Exponential", "exponential", {"timestep_spacing": "linspace"}),
        ("LCM", "Uniform", "uniform", {}),
        ("Euler", "KL Optimal", "kl_optimal", {"timestep_spacing": "linspace"}),
        ("Euler", "Karras", None, {"use_karras_sigmas": True, "timestep_spacing": "linspace"}),  # config
        ("DDIM", "Karras", None, {"timestep_spacing": "leading", "steps_offset": 1}),  # ignored, as A1111
    ],
)
def test_a_schedule_type_the_class_cannot_express_runs_as_a1111(
    name: str, scheduler: str, sigmas: str | None, overrides: dict[str, object]
) -> None:
    choice = samplers.resolve(name, scheduler)
    assert (choice.scheduler, choice.sigmas, choice.config_overrides) == (scheduler, sigmas, overrides)


def test_an_unknown_schedule_type_in_an_infotext_keeps_the_sampler() -> None:
    fields = infotext.parse("a boat\nSteps: 3, Sampler: DPM2 a, Schedule type: Turbo, Seed: 5")
    values, problems = infotext.read_values(fields, Txt2Img)
    assert (values["sampler_name"], values["scheduler"]) == ("DPM2 a", "Automatic")
    assert list(problems) == ["Schedule type"] and "Turbo" in str(problems["Schedule type"])
    karras = infotext.read_values(
        infotext.parse("b\nSteps: 2, Sampler: Euler a, Schedule type: Karras, Seed: 1"), Txt2Img
    )
    assert (karras[0]["sampler_name"], karras[0]["scheduler"], karras[1]) == ("Euler a", "Karras", {})


def test_resolve_maps_to_diffusers() -> None:
    choice = samplers.resolve("DPM++ 2M")
    assert (choice.sampler_name, choice.scheduler, choice.class_name) == (
        "DPM++ 2M", "Karras", "DPMSolverMultistepScheduler",
    )  # fmt: skip
    assert choice.config_overrides == {
        "algorithm_type": "dpmsolver++",
        "solver_order": 2,
        "solver_type": "midpoint",
        "use_karras_sigmas": True,
        "timestep_spacing": "linspace",
    }
    sde3 = samplers.resolve("DPM++ 3M SDE", "Automatic")
    assert (sde3.scheduler, sde3.config_overrides["solver_order"]) == ("Exponential", 3)
    assert sde3.config_overrides["algorithm_type"] == "sde-dpmsolver++"
    assert sde3.config_overrides["use_exponential_sigmas"] is True
    heun = samplers.resolve("DPM++ 2M SDE Heun", "Beta")
    assert (heun.config_overrides["solver_type"], heun.config_overrides["use_beta_sigmas"]) == ("heun", True)
    plms = samplers.resolve("PLMS", "SGM Uniform")
    assert plms.config_overrides == {"skip_prk_steps": True, "timestep_spacing": "trailing"}
    assert samplers.resolve("DDIM").config_overrides == {"timestep_spacing": "leading", "steps_offset": 1}
    assert samplers.resolve("LCM").config_overrides == {}


def test_dpmpp_2s_a_is_the_engines_ancestral_solver_not_an_approximation() -> None:
    sampler = samplers.find_sampler("DPM++ 2S a")
    assert sampler.class_name == "DPMSolver2SAncestralScheduler"  # engine.sampling.dpmpp_2s_ancestral
    assert "Approximation" not in sampler.description


def test_every_sampler_resolves_each_schedule_type_it_lists() -> None:
    for sampler in samplers.SAMPLERS:
        for label in sampler.schedule_types:
            choice = samplers.resolve(sampler.name, label)
            assert choice.class_name == sampler.class_name
            assert set(choice.config_overrides) <= samplers.OWNED_CONFIG_KEYS


def test_choices_do_not_share_state() -> None:
    first = samplers.resolve("Euler", "Karras")
    first.config_overrides["use_karras_sigmas"] = False
    assert samplers.resolve("Euler", "Karras").config_overrides["use_karras_sigmas"] is True
    with pytest.raises(AttributeError):
        first.scheduler = "Uniform"  # type: ignore[misc]


def test_core_modules_import_no_torch_or_diffusers() -> None:
    code = (
        "import sys, webui.core.samplers, webui.core.infotext, webui.core.hashing; "
        "heavy = {'torch', 'diffusers', 'gradio'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=Path(__file__).parents[2])
