"""The progress line's durations and the smoothed ETA (webui/ui/progress.py)."""

from __future__ import annotations

import pytest

from webui.ui.progress import EtaSmoother, format_duration


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (45.4, "45s"), (1010, "16m 50s"), (3725, "1h 02m"), (-3, "0s")]
)
def test_durations_read_as_a1111_shows_them(seconds, shown):
    assert format_duration(seconds) == shown


def test_eta_follows_a_jump_only_part_of_the_way():
    smoother = EtaSmoother()
    assert smoother.update(now=0.0, eta=100.0) == 100.0
    # a sudden estimate of 200 s moves the finish moment a fifth of the way (from 100 to 120)
    assert smoother.update(now=10.0, eta=190.0) == pytest.approx(120.0 - 10.0)
