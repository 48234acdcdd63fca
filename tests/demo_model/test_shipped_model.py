"""The shipped demo model family does what prompts, masks, control images and the LoRA ask, through the
web UI's public paths (App.generate: queue, engine, samplers, extra networks, ControlNet units).

Conservative thresholds on small fixed samples of held-out captions (combos training never saw); the
training script's evaluation reports the full figures (tools/demo_model/README.md). With random weights
(the old placeholder) every one of these fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_app
from tools.demo_model.data import Combo, Scene, control_image, render, shape_mask
from tools.demo_model.evaluate import eval_cases
from tools.demo_model.score import accuracy, iou, judge, read_image, saturation
from webui.core.control_unit import ControlUnit
from webui.core.params import Img2Img, Txt2Img

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
CHECKPOINT = MODELS / "Stable-diffusion" / "demo-shapes.safetensors"
CONTROLNET = "demo-shapes-canny"
LORA = "demo-pastel"
SAMPLE = 12  # held-out captions scored per attribute

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    app = make_app(
        tmp_path_factory.mktemp("demo-data"),
        "--ckpt", str(CHECKPOINT),
        "--lora-dir", str(MODELS / "Lora"),
        "--controlnet-dir", str(MODELS / "ControlNet"),
    )  # fmt: skip
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


def generate(app, params: Txt2Img) -> Image.Image:
    result = app.generate(params, save_images=False)
    assert not result.warnings, result.warnings
    return result.images[0]


def native(prompt: str, seed: int, **fields: object) -> Txt2Img:
    """The UI's defaults for this model (64x64, 20 steps, CFG 7 rescaled by 0.7, DPM++ 2M) and the
    given prompt."""
    return Txt2Img(
        prompt=prompt, seed=seed, width=64, height=64, steps=20, cfg_scale=7.0, cfg_rescale=0.7, **fields
    )


def test_the_page_opens_with_the_models_own_size_steps_and_cfg(app) -> None:
    from webui.ui.blocks import build_ui

    blocks = build_ui(app)
    values = {block.elem_id: getattr(block, "value", None) for block in blocks.blocks.values()}
    for tab in ("txt2img", "img2img"):
        assert values[f"{tab}_width"] == values[f"{tab}_height"] == 64
        assert (values[f"{tab}_steps"], values[f"{tab}_cfg_scale"], values[f"{tab}_cfg_rescale"]) == (
            20,
            7.0,
            0.7,
        )


def test_txt2img_follows_held_out_captions(app) -> None:
    """Shape colour, background, position and size as the caption says (chance: 1/8, 1/8, 1/5, 1/2)."""
    cases = eval_cases(seed=0, count=SAMPLE)
    marks = [judge(read_image(generate(app, native(c.caption, c.seed))), c.combo) for c in cases]
    scores = accuracy(marks)
    for attribute in ("color", "background", "position", "size"):
        assert scores[attribute] >= 0.75, scores


def test_img2img_strength_decides_how_much_of_the_input_stays(app) -> None:
    """Input: a yellow square on black; prompt: a green circle on white. Strength 1.0 draws the prompt's
    colours; strength 0.3 stays much nearer the input."""
    source = render(Scene(Combo("square", "yellow", "black", "left", "large"), x=18.0, y=32.0, radius=13.0))
    prompt = "a large green circle on the right, white background"
    base = Img2Img.from_txt2img(native(prompt, 7), init_images=(source,))
    low = generate(app, base.replace(denoising_strength=0.3))
    high = generate(app, base.replace(denoising_strength=1.0))
    reading = read_image(high)
    assert (reading.background, reading.color) == ("white", "green")

    def distance(image: Image.Image) -> float:
        return float(
            np.abs(np.asarray(image, dtype=np.float32) - np.asarray(source, dtype=np.float32)).mean()
        )

    assert distance(low) < 0.6 * distance(high), (distance(low), distance(high))


def test_inpaint_paints_the_masked_shape_red(app) -> None:
    scene = Scene(Combo("circle", "blue", "green", "center", "large"), x=32.0, y=32.0, radius=14.0)
    mask = Image.fromarray((shape_mask(scene) * 255).astype(np.uint8))
    params = Img2Img.from_txt2img(
        native("a large red circle in the center, green background", 3),
        init_images=(render(scene),),
        mask=mask,
        denoising_strength=1.0,
    )
    reading = read_image(generate(app, params))
    assert (reading.color, reading.background) == ("red", "green")


def test_controlnet_puts_the_shape_where_the_edges_are(app) -> None:
    """Held-out captions with the edge map of the caption's shape at another position (the map format the
    ControlNet was trained on, given ready-made: module "none"); the same prompts and seeds without it."""
    cases = eval_cases(seed=0, count=6)
    scores: dict[str, list[float]] = {"with": [], "without": []}
    for case in cases:
        unit = ControlUnit(module="none", model=CONTROLNET, image=control_image(render(case.scene)))
        target = shape_mask(case.scene)
        for name, units in (("with", (unit,)), ("without", ())):
            image = generate(app, native(case.caption, case.seed, control_units=units))
            scores[name].append(iou(read_image(image).mask, target))
    with_control, without = np.mean(scores["with"]), np.mean(scores["without"])
    assert with_control >= 0.4 and with_control > without + 0.2, scores


def test_lora_tag_switches_the_pastel_style(app) -> None:
    cases = eval_cases(seed=0, count=4)
    on, off, plain = [], [], []
    for case in cases:
        on.append(saturation(generate(app, native(f"{case.caption} <lora:{LORA}:1>", case.seed))))
        off_image = generate(app, native(f"{case.caption} <lora:{LORA}:0>", case.seed))
        off.append(saturation(off_image))
        plain.append(np.asarray(generate(app, native(case.caption, case.seed))))
        assert np.array_equal(np.asarray(off_image), plain[-1])  # weight 0: exactly no LoRA
    assert np.mean(off) - np.mean(on) >= 0.05, (on, off)
