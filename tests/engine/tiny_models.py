"""Moved to tools/tiny_models.py (the placeholder model uses it too); import from there."""

from tools.tiny_models import *  # noqa: F401,F403  # temporary shim while helpers finish, removed before stop
from tools.tiny_models import TinyCheckpoint, build_tiny_checkpoint, save_tiny_checkpoint, tiny_pipeline  # noqa: F401
