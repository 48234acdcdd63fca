"""A1111 infotext: exact format, real A1111 infotexts, and build → parse round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from webui.core import infotext, samplers
from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img, Txt2Img

PARAMS = Txt2Img(prompt="a photo of a cat", negative_prompt="blurry", seed=1, cfg_scale=7.0)

# Infotexts written by A1111 and its forks, as found in public sources (data, not code).
# The example in the docstring of A1111's parse_generation_parameters (early format, 8-char hash).
A1111_DOCSTRING = (
    "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, "
    "by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate\n"
    "Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, "
    "poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"
)
# v1.7.0: sampler and schedule type still combined; hires fields.
V170 = (
    "portrait with soft studio lighting\n"
    "Negative prompt: low quality, worst quality, blurry, watermark\n"
    "Steps: 6, Sampler: DPM++ SDE Karras, CFG scale: 1.5, Seed: 983791494, Size: 512x768, "
    "Model hash: 0928b30687, Model: RVHYPO, VAE hash: e9ed949371, "
    "VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.35, Hires upscale: 2, "
    "Hires steps: 2, Hires upscaler: 4x_NMKD-Superscale-SP_178000_G, Version: v1.7.0"
)
# v1.9.3 (AMD fork): separate Schedule type, a quoted Lora hashes value, no prompt at all.
V193 = (
    "Steps: 10, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: -1245, Size: 512x512, "
    'Model hash: 54ef3e3610, Model: meinamix_meinaV11, Lora hashes: "pensketch_without_pen_lora: '
    '10b2db573492", Version: v1.9.3-amd-29-g0bde866e'
)
# v1.9.4 with extensions: TI hashes, a quoted value with commas, a value ending in '.'.
V194 = (
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 557152044, Size: 768x512, "
    "Model hash: 0a880e98ab, Model: meinacetusorionmix_v10, VAE hash: df3c506e51, VAE: kl-f8-anime2.ckpt, "
    "Hypertile U-Net: True, ADetailer model: hand_yolov8n.pt, ADetailer confidence 2nd: 0.3, "
    'TI hashes: "Tower13_Gizelle: 9ece223c52f8, EasyNegative: c74b4e810b03", '
    'Hardware Info: "RTX 3060 Ti 8GB, i7-13700, 32GB RAM", '
    "Time taken: 22.5 sec., Version: v1.9.4-191-g6ca0466e"
)


def test_build_writes_a1111s_exact_format() -> None:
    text = infotext.build(
        PARAMS,
        model_name="name",
        model_hash="0123456789",
        extra={"RNG": "CPU", "Lora hashes": "a: 0123456789ab, b: ba9876543210", "Version": "v0.1.0"},
    )
    assert text == (
        "a photo of a cat\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, "
        'Model hash: 0123456789, Model: name, RNG: CPU, Lora hashes: "a: 0123456789ab, b: ba9876543210", '
        "Version: v0.1.0"
    )


def test_key_order_follows_a1111_with_extras_in_known_places() -> None:
    params = PARAMS.replace(negative_prompt="", clip_skip=2, cfg_scale=7.5, sampler_name="Euler a", seed=5)
    text = infotext.build(
        params,
        seed=9,
        model_name="m",
        vae_name="v.safetensors",
        version="v1",
        extra={"TI hashes": "x: 1", "Version": "ignored", "RNG": "CPU", "Denoising strength": 0.75},
    )
    assert text == (
        "a photo of a cat\n"
        "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.5, Seed: 9, Size: 512x512, "
        'Model: m, VAE: v.safetensors, Denoising strength: 0.75, Clip skip: 2, RNG: CPU, TI hashes: "x: 1", '
        "Version: v1"
    )


def test_cfg_rescale_is_written_after_a1111s_keys_and_read_in_every_spelling() -> None:
    extra = {"TI hashes": "x", "RNG": "CPU"}
    text = infotext.build(PARAMS.replace(cfg_rescale=0.7, clip_skip=2), extra=extra, version="v1")
    assert text.endswith("Size: 512x512, Clip skip: 2, RNG: CPU, CFG Rescale: 0.7, TI hashes: x, Version: v1")
    assert "CFG Rescale" not in infotext.build(PARAMS)  # 0: plain CFG, left out
    for key in ("CFG Rescale", "CFG Rescale φ", "CFG Rescale phi"):  # ours (reForge's), the extensions'
        assert infotext.to_params(infotext.parse(f"cat\nSteps: 5, {key}: 0.5, Seed: 1")).cfg_rescale == 0.5
    assert infotext.to_params({"Prompt": "x"}).cfg_rescale == 0.0
    with pytest.raises(InvalidParameter, match="'CFG Rescale'"):
        infotext.to_params({"CFG Rescale": "strong"})


def test_schedule_type_is_written_as_in_effect() -> None:
    assert "Sampler: DPM++ 2M, Schedule type: Exponential," in infotext.build(
        PARAMS.replace(scheduler="Exponential")
    )
    assert "Sampler: DPM++ SDE, Schedule type: Karras," in infotext.build(
        PARAMS.replace(sampler_name="DPM++ SDE Karras")
    )
    assert "Sampler: DDIM, Schedule type: Automatic," in infotext.build(PARAMS.replace(sampler_name="ddim"))


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain text", "plain text"),
        ('say "hi"', 'say "hi"'),  # quotes alone need no JSON (A1111)
        ("a, b", '"a, b"'),
        ("key: value", '"key: value"'),
        ("two\nlines", '"two\\nlines"'),
        ('"quoted", too', '"\\"quoted\\", too"'),
        ('"leading quote', '"\\"leading quote"'),  # A1111's reader would unquote it otherwise
        (" padded ", '" padded "'),
        ("ünïcödé, ok", '"ünïcödé, ok"'),
        (7.0, "7"),
        (0.35, "0.35"),
        (True, "True"),
    ],
)
def test_values_are_quoted_only_when_needed(value: infotext.Value, written: str) -> None:
    text = infotext.build(PARAMS, extra={"Extra": value})
    assert f", Extra: {written}" in text
    assert infotext.parse(text)["Extra"] == infotext.format_value(value)


def test_bad_extra_keys_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="infotext key"):
        infotext.build(PARAMS, extra={"a, b": "x"})
    with pytest.raises(ValueError, match="infotext key"):
        infotext.build(PARAMS, extra={"Prompt": "x"})
    with pytest.raises(TypeError, match="str, int, float or bool"):
        infotext.build(PARAMS, extra={"Hashes": {"model": "x"}})  # type: ignore[dict-item]


def test_parse_a1111_docstring_example() -> None:
    fields = infotext.parse(A1111_DOCSTRING)
    assert fields["Prompt"].startswith("girl with an artist's beret,")
    assert fields["Negative prompt"].endswith("(poorly drawn hands), messy drawing")
    assert list(fields)[2:] == ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash"]
    params = infotext.to_params(fields)
    assert (params.sampler_name, params.scheduler) == ("Euler a", "Automatic")
    assert (params.steps, params.cfg_scale, params.seed) == (20, 7.0, 965400086)
    assert (params.width, params.height, params.clip_skip) == (512, 512, 1)
    assert params.sd_model_checkpoint == "45dee52b"  # only a hash: the registry looks checkpoints up by it


def test_parse_v170_combined_sampler_name() -> None:
    fields = infotext.parse(V170)
    assert fields["Sampler"] == "DPM++ SDE Karras"
    assert fields["Hires upscaler"] == "4x_NMKD-Superscale-SP_178000_G"  # unknown keys are kept
    assert fields["Denoising strength"] == "0.35"
    params = infotext.to_params(fields)
    # Karras is DPM++ SDE's default, so A1111 selects Automatic, which resolves to Karras again.
    assert (params.sampler_name, params.scheduler) == ("DPM++ SDE", "Automatic")
    assert samplers.resolve(params.sampler_name, params.scheduler).scheduler == "Karras"
    assert (params.cfg_scale, params.width, params.height) == (1.5, 512, 768)
    assert params.sd_model_checkpoint == "RVHYPO"


def test_parse_v193_without_prompt() -> None:
    fields = infotext.parse(V193)
    assert fields["Prompt"] == "" and fields["Negative prompt"] == ""
    assert fields["Lora hashes"] == "pensketch_without_pen_lora: 10b2db573492"
    assert list(fields)[-1] == "Version"
    params = infotext.to_params(fields)
    assert (params.sampler_name, params.scheduler, params.seed) == ("DPM++ 2M", "Automatic", -1245)


def test_parse_v194_extension_fields() -> None:
    fields = infotext.parse(V194)
    assert fields["TI hashes"] == "Tower13_Gizelle: 9ece223c52f8, EasyNegative: c74b4e810b03"
    assert fields["Hardware Info"] == "RTX 3060 Ti 8GB, i7-13700, 32GB RAM"
    assert fields["Time taken"] == "22.5 sec."
    assert fields["Hypertile U-Net"] == "True"
    assert fields["Version"] == "v1.9.4-191-g6ca0466e"


def test_multi_line_prompts_round_trip() -> None:
    params = PARAMS.replace(
        prompt="line one,\nline two: more\n\nline four", negative_prompt="bad\nworse, worst"
    )
    text = infotext.build(params, extra={"Note": "a\nb"})
    assert text.count("\n") == 6
    fields = infotext.parse(text)
    assert fields["Prompt"] == params.prompt
    assert fields["Negative prompt"] == params.negative_prompt
    assert fields["Note"] == "a\nb"


def test_last_line_with_few_pairs_is_prompt() -> None:
    fields = infotext.parse("a castle\nstyle: gothic, mood: dark")
    assert fields == {"Prompt": "a castle\nstyle: gothic, mood: dark", "Negative prompt": ""}


def test_negative_prompt_only() -> None:
    text = infotext.build(PARAMS.replace(prompt=""))
    assert text.startswith("Negative prompt: blurry\nSteps: 20,")
    assert infotext.parse(text)["Prompt"] == ""


def test_to_params_defaults_and_errors() -> None:
    assert infotext.to_params({"Prompt": "x"}) == Txt2Img(prompt="x")
    assert infotext.to_params({"Clip skip": "2"}).clip_skip == 2
    assert (
        infotext.to_params({"Sampler": "k_euler_a", "Schedule type": "SGM Uniform"}).scheduler
        == "SGM Uniform"
    )
    with pytest.raises(InvalidParameter, match="Size"):
        infotext.to_params({"Size": "512 by 512"})
    with pytest.raises(InvalidParameter, match="Steps"):
        infotext.to_params({"Steps": "twenty"})
    with pytest.raises(InvalidParameter, match="Unknown sampler 'DPM adaptive'"):
        infotext.to_params({"Sampler": "DPM adaptive"})


# ---- fuzzing: build → parse is the identity ----

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9 _/-]{1,14}", fullmatch=True).filter(
    lambda k: k not in infotext.A1111_KEY_ORDER and k not in ("Prompt", "Negative prompt", "Version")
)
VALUE = st.one_of(TEXT, st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans())


def _as_read(text: str) -> str:
    """What survives A1111's reading: lines are stripped."""
    return "\n".join(line.strip() for line in text.strip().split("\n"))


PROMPT = TEXT.map(_as_read).filter(
    lambda p: not any(line.startswith("Negative prompt:") for line in p.split("\n"))
)


@st.composite
def txt2img(draw: st.DrawFn) -> Txt2Img:
    sampler = draw(st.sampled_from(samplers.SAMPLERS))
    return Txt2Img(
        prompt=draw(PROMPT),
        negative_prompt=draw(TEXT.map(_as_read)),
        steps=draw(st.integers(1, 150)),
        cfg_scale=draw(st.floats(0, 30)),
        sampler_name=sampler.name,
        scheduler=draw(st.sampled_from(sampler.schedule_types)),
        seed=draw(st.integers(-1, 2**32 - 1)),
        width=draw(st.integers(8, 256)) * 8,
        height=draw(st.integers(8, 256)) * 8,
        clip_skip=draw(st.integers(1, 12)),
        cfg_rescale=draw(st.floats(0, 1)),
    )


@given(params=txt2img(), model=TEXT, extra=st.dictionaries(KEY, VALUE, max_size=5), version=TEXT)
def test_build_then_parse_is_identity(params: Txt2Img, model: str, extra: dict, version: str) -> None:
    extra = {key: value for key, value in extra.items() if infotext.format_value(value) != key}
    fields = infotext.parse(infotext.build(params, model_name=model, extra=extra, version=version))
    assert fields["Prompt"] == params.prompt
    assert fields["Negative prompt"] == params.negative_prompt
    assert fields["Model"] == model
    assert fields["Version"] == version
    for key, value in extra.items():
        assert fields[key] == infotext.format_value(value)
    assert fields["CFG scale"] == infotext.format_value(params.cfg_scale)
    assert list(fields)[-1] == "Version"


@given(params=txt2img())
def test_params_survive_build_parse_to_params(params: Txt2Img) -> None:
    back = infotext.to_params(infotext.parse(infotext.build(params)))
    expected_schedule = samplers.split_sampler_name(params.sampler_name, params.scheduler)[1]
    assert back == params.replace(scheduler=expected_schedule)


# --- img2img / inpaint ----------------------------------------------------------------------------

IMAGE = Image.new("RGB", (8, 8))
INPAINT = Img2Img(prompt="a cat", seed=3, init_images=(IMAGE,), mask=IMAGE, denoising_strength=0.6)
# An A1111 v1.10 inpaint infotext's parameters line, with the keys in the order A1111 writes them.
A1111_INPAINT = (
    "a cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3, Size: 512x512, "
    "Denoising strength: 0.6, Mask blur: 4, Mask mode: Inpaint not masked, Inpaint area: Only masked, "
    "Masked area padding: 32, Masked content: latent noise, Version: v1"
)


def test_inpaint_infotext_is_a1111s() -> None:
    params = INPAINT.replace(inpainting_mask_invert=1, inpaint_full_res=True, inpainting_fill=2)
    assert infotext.build(params, version="v1") == A1111_INPAINT


def test_inpaint_defaults_are_left_out_and_img2img_has_no_mask_keys() -> None:
    fields = infotext.parse(infotext.build(INPAINT))
    assert fields["Mask blur"] == "4" and fields["Denoising strength"] == "0.6"
    assert not {"Mask mode", "Inpaint area", "Masked area padding", "Masked content"} & set(fields)
    assert infotext.parse(infotext.build(INPAINT.replace(mask_blur=0)))["Mask blur"] == "0"  # as A1111's tab
    assert infotext.parse(infotext.build(INPAINT.replace(inpainting_fill=0)))["Masked content"] == "fill"
    plain = infotext.parse(infotext.build(INPAINT.replace(mask=None)))
    assert plain["Denoising strength"] == "0.6" and "Mask blur" not in plain


def test_img2img_fields_come_back_from_an_infotext() -> None:
    assert infotext.to_img2img_fields(infotext.parse(A1111_INPAINT)) == {
        "denoising_strength": 0.6,
        "mask_blur": 4,
        "inpainting_mask_invert": 1,
        "inpaint_full_res": True,
        "inpainting_fill": 2,
        "inpaint_full_res_padding": 32,
    }
    # an inpaint infotext without the keys A1111 leaves out for their defaults means the defaults
    assert infotext.to_img2img_fields(infotext.parse(infotext.build(INPAINT))) == {
        "denoising_strength": 0.6,
        "mask_blur": 4,
        "inpainting_mask_invert": 0,
        "inpaint_full_res": False,
        "inpainting_fill": 1,
    }
    assert infotext.to_img2img_fields(infotext.parse(V170)) == {"denoising_strength": 0.35}
    assert infotext.to_img2img_fields(infotext.parse(A1111_DOCSTRING)) == {}


def test_bad_img2img_values_are_named() -> None:
    with pytest.raises(InvalidParameter, match="'Masked content' must be one of fill, original"):
        infotext.to_img2img_fields({"Mask blur": "4", "Masked content": "zeros"})
    with pytest.raises(InvalidParameter, match="'Denoising strength' must be a number"):
        infotext.to_img2img_fields({"Denoising strength": "strong"})


@given(
    invert=st.integers(0, 1),
    full=st.booleans(),
    fill=st.integers(0, 3),
    blur=st.integers(0, 64),
    padding=st.integers(0, 256),
    strength=st.floats(0, 1),
)
def test_inpaint_settings_survive_build_parse(
    invert: int, full: bool, fill: int, blur: int, padding: int, strength: float
) -> None:
    params = INPAINT.replace(
        inpainting_mask_invert=invert,
        inpaint_full_res=full,
        inpainting_fill=fill,
        mask_blur=blur,
        inpaint_full_res_padding=padding,
        denoising_strength=strength,
    )
    back = infotext.to_img2img_fields(infotext.parse(infotext.build(params)))
    assert params.replace(**back) == params  # padding is written (and read) for Only masked only
    assert ("inpaint_full_res_padding" in back) == full
