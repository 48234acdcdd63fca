"""The demo model's procedural data: combos, the held-out split, captions, rendering, edge hints."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from scipy import ndimage

from tools.demo_model import data
from tools.demo_model.data import Combo


def test_combos_cover_every_attribute_pair_with_distinct_colours() -> None:
    combos = data.all_combos()
    assert len(combos) == len(set(combos)) == 3 * 8 * 7 * 5 * 2
    assert all(c.color != c.background for c in combos)
    assert {c.color for c in combos} >= {
        "red",
        "green",
        "blue",
        "yellow",
        "white",
        "black",
        "orange",
        "purple",
    }
    assert {c.shape for c in combos} >= {"circle", "square", "triangle"}


def test_held_out_combos_are_never_in_the_training_split() -> None:
    split = data.split_combos(seed=0)
    assert not set(split.train) & set(split.held_out)
    assert set(split.train) | set(split.held_out) == set(data.all_combos())
    assert 0.05 < len(split.held_out) / len(data.all_combos()) < 0.15
    # training scenes are drawn from the training combos only
    assert {s.combo for s in data.sample_scenes(split.train, 500, seed=3)} <= set(split.train)


def test_every_held_out_word_is_taught_by_training_combos() -> None:
    """Held-out combos are new combinations of known words, not new words."""
    split = data.split_combos(seed=0)
    for field in ("shape", "color", "background", "position", "size"):
        seen = {getattr(c, field) for c in split.train}
        assert {getattr(c, field) for c in split.held_out} <= seen, field


def test_split_is_deterministic_per_seed() -> None:
    assert data.split_combos(seed=4) == data.split_combos(seed=4)
    assert data.split_combos(seed=4).held_out != data.split_combos(seed=5).held_out
    with pytest.raises(ValueError, match="held_out_fraction"):
        data.split_combos(held_out_fraction=1.0)


def test_captions_are_deterministic_and_name_every_attribute() -> None:
    combo = Combo("triangle", "orange", "black", "top", "small")
    variants = data.caption_variants(combo)
    assert variants == data.caption_variants(combo)
    assert len(set(variants)) == len(variants) >= 12
    assert "a small orange triangle at the top, black background" in variants
    for text in variants:
        assert {"small", "orange", "triangle", "black"} <= set(text.replace(",", "").split())
        assert any(word in text for word in ("top", "upper"))
        assert " a orange" not in text and not text.startswith("a orange")  # "an orange"
    picks = [data.random_caption(combo, random.Random(7)) for _ in range(2)]
    assert picks[0] == picks[1]


def test_position_phrases_differ_between_positions() -> None:
    left = set(data.caption_variants(Combo("circle", "red", "blue", "left", "large")))
    right = set(data.caption_variants(Combo("circle", "red", "blue", "right", "large")))
    assert not left & right
    assert "a large red circle on the left, blue background" in left


def test_moved_picks_each_other_position_once() -> None:
    combo = Combo("circle", "red", "blue", "left", "large")
    moves = [data.moved(combo, pick) for pick in range(4)]
    assert sorted(m.position for m in moves) == sorted(set(data.ANCHORS) - {"left"})
    assert {dataclasses.replace(m, position="left") for m in moves} == {combo}


def test_scenes_and_images_are_deterministic_per_seed() -> None:
    combos = data.split_combos(0).train
    first, again = data.sample_scenes(combos, 20, seed=1), data.sample_scenes(combos, 20, seed=1)
    assert first == again
    assert first != data.sample_scenes(combos, 20, seed=2)
    assert np.array_equal(np.asarray(data.render(first[0])), np.asarray(data.render(again[0])))


@pytest.mark.parametrize("shape", data.SHAPES)
def test_render_draws_the_shape_in_its_colour_at_its_place(shape: str) -> None:
    scene = data.Scene(Combo(shape, "red", "blue", "left", "large"), x=18.0, y=32.0, radius=11.0)
    pixels = np.asarray(data.render(scene)).astype(int)
    mask = data.shape_mask(scene)
    assert abs(mask.sum() - np.pi * 11.0**2) < 0.08 * np.pi * 11.0**2  # equal-area shapes
    rows, cols = np.nonzero(mask)
    assert abs(cols.mean() + 0.5 - 18.0) < 1.0 and abs(rows.mean() + 0.5 - 32.0) < 1.0
    inner = ndimage.binary_erosion(mask, iterations=1)
    assert (pixels[inner] == data.PALETTE["red"]).all()
    assert (pixels[~ndimage.binary_dilation(mask, iterations=1)] == data.PALETTE["blue"]).all()


def test_large_shapes_cover_more_than_small_ones() -> None:
    small = data.Scene(Combo("square", "red", "blue", "center", "small"), 32.0, 32.0, data.RADII["small"])
    large = data.Scene(Combo("square", "red", "blue", "center", "large"), 32.0, 32.0, data.RADII["large"])
    assert data.shape_mask(large).sum() > 2.5 * data.shape_mask(small).sum()


def test_pastel_style_mixes_every_colour_with_white() -> None:
    scene = data.Scene(Combo("circle", "purple", "black", "center", "large"), 32.0, 32.0, 11.0)
    plain, pastel = (
        np.asarray(data.render(scene)).astype(int),
        np.asarray(data.render(scene, "pastel")).astype(int),
    )
    assert (pastel >= plain).all()
    expected = (np.array(data.PALETTE["black"]) + 255) / 2
    assert np.abs(pastel[0, 0] - expected).max() <= 1


def test_edge_hint_traces_the_shape_outline() -> None:
    for scene in data.sample_scenes(data.all_combos(), 30, seed=9):
        hint = np.asarray(data.control_image(data.render(scene)))
        assert hint.shape == (64, 64, 3) and set(np.unique(hint)) == {0, 255}
        lines = hint[..., 0] == 255
        mask = data.shape_mask(scene)
        boundary = ndimage.binary_dilation(mask, iterations=2) & ~ndimage.binary_erosion(mask, iterations=2)
        assert lines.sum() > 10
        assert (lines <= boundary).all()  # every edge pixel sits on the outline
        assert not lines[ndimage.binary_erosion(mask, iterations=3)].any()  # none inside the filled shape
