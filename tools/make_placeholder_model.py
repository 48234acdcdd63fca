"""Create a tiny random-weights SD1-architecture checkpoint so a fresh install can serve the UI offline.

It stands in until the trained demo model ships: its images are noise-like, but every part of the UI,
the API, the infotext and the loader work with it. Usage: python tools/make_placeholder_model.py DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from tools.tiny_models import tiny_pipeline  # noqa: E402
from webui.engine.ldm_layout import save_ldm_checkpoint  # noqa: E402

NAME = "placeholder-random-sd1.safetensors"
METADATA = {
    "modelspec.title": "Placeholder (random weights)",
    "modelspec.description": "Tiny SD1-architecture model with random weights; outputs look like noise.",
}


def make_placeholder(folder: Path) -> Path:
    """Write the checkpoint atomically (a temporary name, then a rename), so no half file is ever listed."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / NAME
    temporary = folder / f".{NAME}.tmp"
    # SD's 8x latents (4 VAE levels) and no attention at full latent resolution keep the UI's default
    # 512x512 quick on a CPU.
    pipe = tiny_pipeline("sd1", seed=0, vae_levels=4, full_resolution_attention=False)
    save_ldm_checkpoint(pipe, temporary, METADATA)
    os.replace(temporary, target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"Created {make_placeholder(Path(sys.argv[1]))}")
