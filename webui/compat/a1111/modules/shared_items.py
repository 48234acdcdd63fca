"""modules.shared_items: the choices A1111's settings offer, as far as extensions read them."""

from __future__ import annotations

from webui.compat.a1111.modules.sd_samplers import visible_sampler_names


def list_samplers() -> list[str]:
    return list(visible_sampler_names)


def cross_attention_optimizations() -> list[str]:
    return ["Automatic", "None"]


def sd_unet_items() -> list[str]:
    return ["Automatic", "None"]


def refresh_unet_list() -> None:
    """No UNet replacements here."""


def sd_vae_items() -> list[str]:
    return ["Automatic", "None"]


def refresh_vae_list() -> None:
    """VAEs are listed by the program's own VAE choice."""
