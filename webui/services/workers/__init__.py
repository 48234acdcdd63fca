"""Generation on several worker processes or machines through Ray (`--workers N`, `--ray-address ADDR`).

The head (the UI process) keeps the queue, the settings and the outputs; each worker is a Ray actor with
its own model manager. `plan` (which batch runs where, with which seeds) and `messages` (what travels)
are plain Python; `worker` runs inside an actor; `pool` and `distributed` run on the head. Only `pool`
and `distributed` import ray, and only the App imports them, and only when a flag asks for workers.
"""
