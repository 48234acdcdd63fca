"""Splitting a job's batches over workers (services/workers/plan.py) and the worker flags; no Ray needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from webui.core.cmd_args import device_ids, parse_args, uses_workers
from webui.core.params import Txt2Img
from webui.services.workers.plan import batch_params, give_back, split_batches

ROOT = Path(__file__).resolve().parents[2]


def test_eight_batches_over_two_workers_are_two_runs_of_four() -> None:
    plan = split_batches(8, ["a", "b"])
    assert {worker: list(batches) for worker, batches in plan.items()} == {
        "a": [0, 1, 2, 3],
        "b": [4, 5, 6, 7],
    }


def test_uneven_split_gives_the_first_workers_the_extra_batches_and_idle_workers_none() -> None:
    assert {w: list(b) for w, b in split_batches(5, ["a", "b"]).items()} == {"a": [0, 1, 2], "b": [3, 4]}
    assert {w: list(b) for w, b in split_batches(2, ["a", "b", "c"]).items()} == {"a": [0], "b": [1]}
    with pytest.raises(ValueError, match="no worker"):
        split_batches(3, [])


def test_a_batch_alone_keeps_the_seeds_it_has_in_the_whole_job() -> None:
    params = Txt2Img(seed=1000, subseed=50, batch_size=3, n_iter=4)
    third = batch_params(params, 2)
    assert (third.n_iter, third.batch_size, third.seed, third.subseed) == (1, 3, 1006, 56)
    varied = batch_params(params.replace(subseed_strength=0.5), 2)
    assert (varied.seed, varied.subseed) == (1000, 56)  # with a variation strength every image has the seed


def test_a_lost_workers_batches_go_to_the_workers_with_least_left() -> None:
    plan = split_batches(9, ["a", "b", "c"])  # a: 0-2, b: 3-5, c: 6-8
    plan["a"].clear()  # a finished
    plan["b"].popleft()  # b is running 3
    give_back(plan, [8, 7, 6], ["a", "b"])  # c was lost with all three
    assert sorted([*plan["a"], *plan["b"]]) == [4, 5, 6, 7, 8]
    assert list(plan["a"]) == [6, 7, 8] and list(plan["b"]) == [4, 5]


def test_worker_flags() -> None:
    args = parse_args(["--workers", "2", "--device-id", "0,1"])
    assert uses_workers(args) and device_ids(args) == ("0", "1")
    assert not uses_workers(parse_args([]))
    for bad in (
        ["--workers", "-1"],
        ["--workers", "2", "--ray-address", "h:6379"],
        ["--workers", "3", "--device-id", "0,1"],
    ):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_the_server_without_worker_flags_never_imports_ray(tmp_path: Path) -> None:
    code = (
        "import sys; from webui.app import App; from webui.core.cmd_args import parse_args; "
        f"App(parse_args(['--data-dir', {str(tmp_path)!r}])); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
