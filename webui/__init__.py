"""An AUTOMATIC1111-style Stable Diffusion web UI on diffusers."""

__version__ = "0.1.0"
