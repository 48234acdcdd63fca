"""Train every stage in order and export each model as soon as its stage is done."""

from __future__ import annotations

from pathlib import Path

from tools.demo_model.config import TrainConfig
from tools.demo_model.export import ExportedFiles, export_checkpoint, export_controlnet, export_lora
from tools.demo_model.stages import train_controlnet, train_layout, train_lora, train_unet
from tools.demo_model.vae_check import check_vae
from tools.demo_model.vae_stage import train_vae


def build(config: TrainConfig, models_dir: Path) -> ExportedFiles | None:
    """The three files under `models_dir` (A1111 folder names), or None when a stage's time cap stopped
    the run (call again with the same work dir to continue)."""
    files = ExportedFiles.under(models_dir)
    vae = train_vae(config)
    if vae is None:
        return None
    print("\n".join(check_vae(vae, config.seed).lines()), flush=True)
    trained = train_unet(config, vae)
    if trained is None:
        return None
    trained = train_layout(config, vae, *trained)
    if trained is None:
        return None
    unet, text_encoder = trained
    export_checkpoint(
        files.checkpoint, vae, unet, text_encoder, config.prediction_type, config.zero_terminal_snr
    )
    controlnet = train_controlnet(config, vae, unet, text_encoder)
    if controlnet is None:
        return None
    export_controlnet(files.controlnet, controlnet)
    styled = train_lora(config, vae, unet, text_encoder)
    if styled is None:
        return None
    export_lora(files.lora, styled)
    return files
