"""Every bench script still imports (the benches are run by hand, so nothing else notices when a name they
use moves): each is loaded as a module, which runs its imports but not its `main`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHES = sorted((Path(__file__).resolve().parents[1] / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("path", BENCHES, ids=[path.stem for path in BENCHES])
def test_bench_imports(path: Path) -> None:
    source = path.read_text()
    assert 'if __name__ == "__main__":' in source  # importing must not start the bench
    name = f"bench_under_test_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
