"""engine.image_prep: input conversion, resize modes, masks, "Only masked" regions, fill and paste-back.

Pure PIL/numpy: synthetic images whose colours say where each pixel came from.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img
from webui.engine.sampling import image_prep
from webui.engine.sampling.image_prep import CROP_AND_RESIZE, JUST_RESIZE, LATENT_UPSCALE, RESIZE_AND_FILL

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def stripes(width: int = 128, height: int = 64) -> Image.Image:
    """Red left quarter, green middle half, blue right quarter."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 4] = RED
    pixels[:, width // 4 : 3 * width // 4] = GREEN
    pixels[:, 3 * width // 4 :] = BLUE
    return Image.fromarray(pixels)


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size)
    mask.paste(255, box)
    return mask


def arr(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int32)


def grown(mask: Image.Image, pixels: int) -> np.ndarray:
    """Where `mask` is set, dilated by `pixels` (a square neighbourhood)."""
    return np.asarray(mask.filter(ImageFilter.MaxFilter(2 * pixels + 1))) > 0


# --- input conversion ---------------------------------------------------------------------------------


def test_transparent_pixels_are_flattened_onto_white() -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (0, 255, 0, 128))
    rgba.putpixel((2, 0), (0, 0, 255, 0))
    rgb = image_prep.to_rgb(rgba)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == RED  # opaque: unchanged
    half = rgb.getpixel((1, 0))
    assert abs(half[0] - 127) <= 1 and half[1] == 255 and abs(half[2] - 127) <= 1  # half over white
    assert rgb.getpixel((2, 0)) == (255, 255, 255)  # transparent: background


def test_palette_and_grey_alpha_images_are_flattened_too() -> None:
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 10, 20, 30])
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 0  # index 0 is transparent
    assert image_prep.to_rgb(palette).getpixel((0, 0)) == (255, 255, 255)
    assert image_prep.to_rgb(palette).getpixel((1, 0)) == (10, 20, 30)
    grey_alpha = Image.new("LA", (1, 1), (40, 0))
    assert image_prep.to_rgb(grey_alpha).getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_greyscale_is_scaled_to_8_bits_not_clipped() -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    rgb = image_prep.to_rgb(image)
    assert [rgb.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (100, 100, 100), (255, 255, 255)]


def test_cmyk_is_converted() -> None:
    assert image_prep.to_rgb(Image.new("CMYK", (1, 1), (0, 255, 0, 0))).getpixel((0, 0)) == (255, 0, 255)


def test_huge_or_empty_inputs_are_refused_with_their_size() -> None:
    with pytest.raises(InvalidParameter, match=r"input image is 6000x6000 \(36.0 megapixels\); the limit"):
        image_prep.to_rgb(Image.new("L", (6000, 6000)))
    with pytest.raises(InvalidParameter, match="mask is empty"):
        image_prep.binary_mask(Image.new("L", (0, 5)))


# --- resize modes ---------------------------------------------------------------------------------


def test_just_resize_squeezes_everything_in() -> None:
    out = image_prep.resize_image(stripes(), JUST_RESIZE, 64, 48)
    assert out.size == (64, 48)
    assert out.getpixel((0, 24)) == RED and out.getpixel((63, 24)) == BLUE


def test_crop_and_resize_keeps_the_centre_only() -> None:
    out = image_prep.resize_image(stripes(), CROP_AND_RESIZE, 64, 64)  # 128x64 → the middle 64 columns
    assert out.size == (64, 64)
    assert (arr(out) == GREEN).all()


def test_resize_and_fill_stretches_the_edges_into_the_bands() -> None:
    out = image_prep.resize_image(stripes(), RESIZE_AND_FILL, 64, 64)  # fitted to 64x32, 16-row bands
    pixels = arr(out)
    assert out.size == (64, 64)
    assert (pixels[:16] == pixels[16]).all() and (pixels[48:] == pixels[47]).all()
    assert tuple(pixels[32, 0]) == RED and tuple(pixels[32, 32]) == GREEN and tuple(pixels[32, 63]) == BLUE


def test_latent_upscale_resizes_like_just_resize_in_pixels() -> None:
    assert image_prep.resize_image(stripes(), LATENT_UPSCALE, 64, 48).tobytes() == (
        image_prep.resize_image(stripes(), JUST_RESIZE, 64, 48).tobytes()
    )


# --- masks ----------------------------------------------------------------------------------------


def test_a_painted_layer_mask_uses_its_alpha_else_its_luminance() -> None:
    layer = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    layer.putpixel((1, 0), (0, 0, 0, 255))  # painted in black, but opaque
    layer.putpixel((2, 0), (0, 0, 0, 100))  # faint stroke: below half, not masked
    assert arr(image_prep.binary_mask(layer)).ravel().tolist() == [0, 255, 0, 0]
    opaque = Image.new("RGBA", (2, 1), (255, 255, 255, 255))
    opaque.putpixel((0, 0), (0, 0, 0, 255))
    assert arr(image_prep.binary_mask(opaque)).ravel().tolist() == [0, 255]
    grey = Image.new("L", (1, 1), 90)
    assert arr(image_prep.binary_mask(grey)).ravel().tolist() == [90]  # grey levels are kept, as A1111


def test_blur_reaches_int_2_5_sigma_and_no_further() -> None:
    mask = box_mask((100, 100), (30, 30, 70, 70))
    blurred = np.asarray(image_prep.blur_mask(mask, 4))
    reach = image_prep.blur_reach(4)
    assert reach == 10
    assert blurred[50, 30 - reach + 2] > 0  # inside the reach: some of the mask
    assert blurred[50, 30 - reach - 1] == 0 and not blurred[~grown(mask, reach)].any()
    assert blurred[50, 50] == 255 and 0 < blurred[50, 30] < 255
    assert image_prep.blur_mask(mask, 0).tobytes() == mask.tobytes()


# --- "Only masked" region -------------------------------------------------------------------------


def test_crop_region_is_the_padded_bounding_box_inside_the_mask() -> None:
    mask = box_mask((100, 60), (40, 10, 50, 20))
    assert image_prep.crop_region(mask, 5) == (35, 5, 55, 25)
    assert image_prep.crop_region(mask, 50) == (0, 0, 100, 60)
    assert image_prep.crop_region(Image.new("L", (10, 10)), 5) is None


def test_region_grows_to_the_output_aspect_and_stays_inside() -> None:
    assert image_prep.expand_region((35, 5, 55, 25), 64, 64, (100, 60)) == (35, 5, 55, 25)
    assert image_prep.expand_region((35, 5, 55, 25), 128, 64, (100, 60)) == (25, 5, 65, 25)
    assert image_prep.expand_region((35, 5, 55, 25), 64, 128, (100, 60)) == (35, 0, 55, 40)  # moved down
    assert image_prep.expand_region((90, 10, 100, 20), 128, 64, (100, 60)) == (80, 10, 100, 20)  # moved left
    assert image_prep.expand_region((0, 10, 100, 20), 64, 64, (100, 60)) == (
        0,
        0,
        100,
        60,
    )  # cut to the image


# --- masked content "fill" and paste-back ---------------------------------------------------------


def test_fill_takes_the_surrounding_colours_and_keeps_the_rest() -> None:
    image = stripes(96, 64)  # red | green | blue
    mask = box_mask(image.size, (16, 16, 80, 48))  # over all three stripes
    filled = image_prep.fill_masked(image, mask)
    before, after, inside = arr(image), arr(filled), np.asarray(mask) > 0
    assert (after[~inside] == before[~inside]).all()
    assert after[32, 18, 0] > after[32, 18, 2]  # the hole's left side takes the red around it
    assert after[32, 78, 2] > after[32, 78, 0]  # its right side the blue
    assert np.abs(np.diff(after[32, 16:80], axis=0)).max() < 40  # smoothly, with no hard edge


def test_paste_back_keeps_the_input_where_the_overlay_is_zero() -> None:
    original, generated = noise_image(40, 30, 1), noise_image(40, 30, 2)
    overlay = box_mask(original.size, (10, 5, 20, 15))
    out = arr(image_prep.paste_back(original, generated, overlay, None))
    inside = np.asarray(overlay) > 0
    assert (out[~inside] == arr(original)[~inside]).all() and (out[inside] == arr(generated)[inside]).all()


def test_paste_back_of_a_region_scales_the_result_into_its_box() -> None:
    original = noise_image(100, 60, 1)
    generated = Image.new("RGB", (64, 64), BLUE)
    overlay = box_mask(original.size, (35, 5, 55, 25))
    out = arr(image_prep.paste_back(original, generated, overlay, (35, 5, 55, 25)))
    inside = np.asarray(overlay) > 0
    assert (out[~inside] == arr(original)[~inside]).all() and (out[inside] == BLUE).all()


# --- prepare: the whole plan of one run -----------------------------------------------------------


def params(**changes: object) -> Img2Img:
    """A 96x80 noise input for a 64x48 output."""
    base = Img2Img(init_images=(noise_image(96, 80),), width=64, height=48)
    return base.replace(**changes)  # type: ignore[return-value]


def test_without_a_mask_the_inputs_are_resized_by_the_resize_mode() -> None:
    for mode in (JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL):
        prepared = image_prep.prepare(params(resize_mode=mode))
        assert prepared.images[0].size == (64, 48) and prepared.mask is None
        resized = image_prep.resize_image(params().init_images[0], mode, 64, 48)
        assert prepared.images[0].tobytes() == resized.tobytes()
        assert prepared.finish(0, prepared.images[0]) is prepared.images[0]  # nothing to paste back
    latent = image_prep.prepare(params(resize_mode=LATENT_UPSCALE, init_images=(noise_image(90, 77),)))
    assert latent.images[0].size == (88, 72)  # its own size, rounded down to the VAE's multiple


def test_whole_picture_repaints_the_blurred_mask_and_shows_it_doubled() -> None:
    mask = box_mask((96, 80), (30, 20, 60, 50))
    prepared = image_prep.prepare(params(mask=mask, mask_blur=4))
    expected = image_prep.resize_image(image_prep.blur_mask(mask, 4), JUST_RESIZE, 64, 48)
    assert prepared.mask is not None and prepared.mask.tobytes() == expected.tobytes()
    assert prepared.overlay is not None
    assert (arr(prepared.overlay) == np.minimum(arr(expected) * 2, 255)).all()
    assert prepared.originals[0].size == (64, 48) and prepared.region is None and not prepared.warnings


def test_mask_mode_inverts_and_a_mask_of_another_size_is_resized() -> None:
    small = box_mask((48, 40), (15, 10, 30, 25))  # half the input's size
    inverted = image_prep.prepare(params(mask=small, inpainting_mask_invert=1))
    resized = small.resize((96, 80), Image.Resampling.LANCZOS)
    expected = image_prep.prepare(params(mask=Image.eval(resized, lambda v: 255 - v)))
    assert inverted.mask is not None and expected.mask is not None
    assert inverted.mask.tobytes() == expected.mask.tobytes()
    assert arr(inverted.mask)[21, 30] == 0 and arr(inverted.mask)[2, 2] == 255  # the box, scaled to 64x48


def test_only_masked_generates_the_padded_region_and_pastes_into_the_full_input() -> None:
    mask = box_mask((96, 80), (40, 30, 50, 40))
    source = params(mask=mask, mask_blur=0, inpaint_full_res=True, inpaint_full_res_padding=4)
    image = source.init_images[0]
    prepared = image_prep.prepare(source)
    assert prepared.region == (33, 26, 57, 44)  # (36, 26, 54, 44) grown to 4:3
    assert prepared.only_masked and prepared.images[0].size == (64, 48)
    crop = image.crop(prepared.region)
    assert prepared.images[0].tobytes() == image_prep.resize_image(crop, RESIZE_AND_FILL, 64, 48).tobytes()
    assert prepared.originals[0].tobytes() == image.tobytes()
    assert prepared.overlay is not None and prepared.overlay.tobytes() == mask.tobytes()
    out = arr(prepared.finish(0, Image.new("RGB", (64, 48), BLUE)))
    inside = np.asarray(mask) > 0
    assert out.shape == (80, 96, 3)
    assert (out[inside] == BLUE).all() and (out[~inside] == arr(image)[~inside]).all()


def test_fill_is_applied_to_what_the_vae_encodes() -> None:
    mask = box_mask((96, 80), (30, 20, 60, 50))
    original = image_prep.prepare(params(mask=mask, inpainting_fill=1))
    filled = image_prep.prepare(params(mask=mask, inpainting_fill=0))
    assert filled.originals[0].tobytes() == original.originals[0].tobytes()  # pasted onto the input
    changed = np.abs(arr(filled.images[0]) - arr(original.images[0])).sum(-1) > 0
    assert changed.any() and not changed[np.asarray(filled.mask) == 0].any()


def test_an_empty_mask_repaints_nothing_or_falls_back_to_img2img() -> None:
    empty = Image.new("L", (96, 80))
    whole = image_prep.prepare(params(mask=empty))
    assert whole.mask is not None and whole.warnings == ("The mask is empty: nothing was repainted",)
    assert whole.finish(0, Image.new("RGB", (64, 48), BLUE)).tobytes() == whole.originals[0].tobytes()
    only = image_prep.prepare(params(mask=empty, inpaint_full_res=True))
    assert only.mask is None and only.overlay is None and not only.only_masked
    assert "plain img2img" in only.warnings[0]


def test_several_inputs_make_the_batch() -> None:
    two = (noise_image(8, 8, 1), noise_image(8, 8, 2))
    assert image_prep.batch_size_for(params(batch_size=3)) == 3
    assert image_prep.batch_size_for(params(init_images=two, batch_size=4)) == 2
    with pytest.raises(InvalidParameter, match="2 input images but a batch size of 1"):
        image_prep.batch_size_for(params(init_images=two))
