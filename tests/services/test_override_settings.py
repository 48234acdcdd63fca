"""A1111's "Override settings" from a pasted infotext (services.override_settings): which keys become
which options, only when they differ from the current setting, and back to options for the job."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from webui.core import infotext
from webui.core.errors import ModelNotFound, UserError
from webui.services.override_settings import OverrideSettings
from webui.services.settings import Settings

TEXT = (
    "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: m, "
    "Eta: 0.67, ENSD: 31337, RNG: CPU, VAE: vae-ft-mse.safetensors, Clip skip: 2"
)


def known_vaes(options: Mapping[str, Any]) -> None:
    if options.get("sd_vae", "Automatic") not in ("Automatic", "None", "vae-ft-mse.safetensors"):
        raise ModelNotFound(f"VAE {options['sd_vae']!r} not found")


@pytest.fixture()
def overrides(tmp_path: Path) -> OverrideSettings:
    return OverrideSettings(Settings(tmp_path / "config.json"), known_vaes)


def test_the_settings_an_infotext_carries_are_offered_in_a1111_order(overrides: OverrideSettings) -> None:
    offered = overrides.offered(infotext.parse(TEXT))
    assert offered.entries == ["ENSD: 31337", "Eta: 0.67", "RNG: CPU", "VAE: vae-ft-mse.safetensors"]
    assert offered.warnings == []
    assert overrides.options(offered.entries) == {
        "eta_noise_seed_delta": 31337,
        "eta_ancestral": 0.67,
        "randn_source": "CPU",
        "sd_vae": "vae-ft-mse.safetensors",
    }


def test_only_values_other_than_the_current_setting_are_offered(overrides: OverrideSettings) -> None:
    overrides.settings.update({"randn_source": "CPU", "eta_noise_seed_delta": 31337})
    assert overrides.offered(infotext.parse(TEXT)).entries == ["Eta: 0.67", "VAE: vae-ft-mse.safetensors"]
    # no RNG key: made with A1111's default source, GPU, which differs from CPU now
    plain = infotext.parse("a cat\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 512x512")
    assert overrides.offered(plain).entries == ["RNG: GPU"]


def test_values_that_cannot_be_used_are_named_not_offered(overrides: OverrideSettings) -> None:
    fields = infotext.parse("a\nSteps: 2, Seed: 1, Size: 64x64, ENSD: lots, RNG: Quantum, VAE: gone.pt")
    offered = overrides.offered(fields)
    assert offered.entries == []
    assert [w.split(" not pasted")[0] for w in offered.warnings] == ["ENSD", "RNG", "VAE"]
    with pytest.raises(UserError, match="unknown entry"):
        overrides.options(["Sampler: Euler"])
