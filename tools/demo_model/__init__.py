"""Training code of the bundled demo model family (checkpoint, ControlNet, LoRA); see README.md here.

Independent of the web UI at run time except for three things it must share with it: the bundled SD1
configs and CLIP tokenizer (models.py), the LDM key layout (export.py) and, for evaluation, the loader
and sampler table, so the figures describe exactly what a user's generation does.
"""
