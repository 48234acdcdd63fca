"""The pixel scorer reads the generator's own images correctly, and notices what does not match."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tools.demo_model import data, score
from tools.demo_model.data import Combo, Scene

ATTRIBUTES = ("color", "background", "position", "size", "shape")


@pytest.fixture(scope="module")
def ground_truth() -> list[tuple[Scene, score.Reading]]:
    scenes = data.sample_scenes(data.all_combos(), 400, seed=11)
    return [(scene, score.read_image(data.render(scene))) for scene in scenes]


def test_scorer_reads_generated_ground_truth_images(ground_truth: list[tuple[Scene, score.Reading]]) -> None:
    marks = [score.judge(reading, scene.combo) for scene, reading in ground_truth]
    results = score.accuracy(marks)
    assert set(results) == set(ATTRIBUTES)
    for attribute in ATTRIBUTES:
        assert results[attribute] >= 0.99, (attribute, results)


def test_scorer_finds_the_shape_mask(ground_truth: list[tuple[Scene, score.Reading]]) -> None:
    ious = [score.iou(reading.mask, data.shape_mask(scene)) for scene, reading in ground_truth]
    # only half-covered edge rows of small squares can disagree (a tie at coverage 0.5)
    assert min(ious) > 0.65 and np.mean(ious) > 0.95


def test_scorer_notices_every_mismatched_attribute() -> None:
    scene = Scene(Combo("circle", "yellow", "purple", "left", "large"), 18.0, 32.0, 11.0)
    reading = score.read_image(data.render(scene))
    other = Combo("triangle", "green", "white", "right", "small")
    assert score.judge(reading, scene.combo) == dict.fromkeys(ATTRIBUTES, True)
    assert score.judge(reading, other) == dict.fromkeys(ATTRIBUTES, False)
    for field in ATTRIBUTES:
        changed = dataclasses.replace(scene.combo, **{field: getattr(other, field)})
        marks = score.judge(reading, changed)
        assert [k for k, ok in marks.items() if not ok] == [field]


def test_moved_shape_changes_the_position_reading() -> None:
    for position, (x, y) in data.ANCHORS.items():
        scene = Scene(Combo("square", "white", "black", position, "small"), x, y, data.RADII["small"])
        assert score.read_image(data.render(scene)).position == position


def test_image_without_a_shape_reads_as_background_only() -> None:
    blank = np.zeros((64, 64, 3), dtype=np.uint8)
    blank[:] = data.PALETTE["green"]
    reading = score.read_image(blank)
    assert reading.background == "green"
    assert reading.color is reading.position is reading.size is reading.shape is None
    assert not reading.mask.any()
    marks = score.judge(reading, Combo("circle", "red", "green", "center", "small"))
    assert marks == {"color": False, "background": True, "position": False, "size": False, "shape": False}


def test_noise_speckles_do_not_move_the_shape() -> None:
    scene = Scene(Combo("circle", "red", "white", "right", "large"), 46.0, 32.0, 11.0)
    pixels = np.asarray(data.render(scene)).copy()
    pixels[5, 5] = pixels[60, 10] = data.PALETTE["black"]  # isolated dark pixels far from the shape
    reading = score.read_image(pixels)
    assert reading.position == "right" and reading.color == "red"


def test_nearest_colour_names_palette_and_near_palette_pixels() -> None:
    names = list(data.PALETTE)
    rgb = np.array([data.PALETTE[n] for n in names], dtype=np.float32)
    assert [names[i] for i in score.nearest_colors(rgb)] == names
    assert [names[i] for i in score.nearest_colors(rgb * 0.9 + 10)] == names


def test_iou() -> None:
    a = np.zeros((4, 4), dtype=bool)
    b = a.copy()
    a[:2] = True
    b[1:3] = True
    assert score.iou(a, a) == 1.0
    assert score.iou(a, b) == pytest.approx(4 / 12)
    assert score.iou(a, ~a) == 0.0


def test_pastel_images_are_less_saturated() -> None:
    scene = Scene(Combo("circle", "red", "blue", "center", "large"), 32.0, 32.0, 11.0)
    plain, pastel = score.saturation(data.render(scene)), score.saturation(data.render(scene, "pastel"))
    assert plain > 0.8 and pastel < 0.5 * plain


def _rounded(scene: Scene, radius: int) -> np.ndarray:
    """The scene's render with the shape's bounding-box corners rounded off to `radius` pixels."""
    pixels = np.asarray(data.render(scene)).copy()
    mask = data.shape_mask(scene)
    rows, cols = np.nonzero(mask)
    yy, xx = np.mgrid[0:64, 0:64]
    nearest_y = np.clip(yy, rows.min() + radius, rows.max() - radius)
    nearest_x = np.clip(xx, cols.min() + radius, cols.max() - radius)
    cut = mask & ((yy - nearest_y) ** 2 + (xx - nearest_x) ** 2 > radius**2)
    pixels[cut] = data.PALETTE[scene.combo.background]
    return pixels


def test_a_square_with_rounded_corners_still_reads_as_a_square() -> None:
    """Bounding-box fill (the old rule) called it a circle (fill 0.92); it is a square by eye."""
    scene = Scene(Combo("square", "white", "blue", "center", "large"), 32.0, 32.0, 11.0)
    assert score.read_image(_rounded(scene, 4)).shape == "square"


def test_a_shape_of_no_kind_reads_no_kind() -> None:
    """A plus sign is neither circle, square nor triangle (bounding-box fill called it a triangle)."""
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:] = data.PALETTE["blue"]
    pixels[20:44, 29:35] = pixels[29:35, 20:44] = data.PALETTE["white"]
    reading = score.read_image(pixels)
    assert reading.color == "white" and reading.position == "center"
    assert reading.shape is None


def test_small_shapes_of_every_kind_read_right_at_64_pixels() -> None:
    for shape in data.SHAPES:
        for position, (x, y) in data.ANCHORS.items():
            scene = Scene(Combo(shape, "red", "green", position, "small"), x, y, data.RADII["small"] * 0.92)
            assert score.read_image(data.render(scene)).shape == shape, (shape, position)


def test_edge_error_is_zero_on_renders_and_sees_a_frame(
    ground_truth: list[tuple[Scene, score.Reading]],
) -> None:
    errors = [score.edge_error(data.render(scene), reading.mask) for scene, reading in ground_truth[:50]]
    assert max(errors) < 2.0
    scene = ground_truth[0][0]
    framed = np.asarray(data.render(scene)).copy()
    framed[0, :] = framed[:, 0] = np.array(data.PALETTE[scene.combo.background]) // 2  # a dark edge line
    mask = ground_truth[0][1].mask
    assert score.edge_error(framed, mask) > 6.0
    # a background drawn a little off its palette colour everywhere is no frame
    tinted = np.clip(np.asarray(data.render(scene)).astype(int) + 12, 0, 255).astype(np.uint8)
    assert score.edge_error(tinted, mask) < 2.0


def test_edge_error_of_a_shape_filling_the_picture_is_a_number() -> None:
    """A shape covering everything inside the ring (early VAE reconstructions) gave NaN."""
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:] = data.PALETTE["blue"]
    pixels[0, :] = data.PALETTE["white"]
    everything = np.ones((64, 64), dtype=bool)
    error = score.edge_error(pixels, everything)
    assert 0.0 < error < 255.0
