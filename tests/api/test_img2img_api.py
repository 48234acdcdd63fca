"""POST /sdapi/v1/img2img on a real server: A1111's payload in, images + parameters + info out; bad
images are clear 422s and the server keeps serving."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
import requests
from PIL import Image, ImageDraw

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"width": 64, "height": 64, "steps": 3, "cfg_scale": 5, "seed": 11, "prompt": "a red ball"}


def b64(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def two_colours(size: tuple[int, int] = (64, 64)) -> Image.Image:
    image = Image.new("RGB", size, (200, 30, 30))
    ImageDraw.Draw(image).rectangle((size[0] // 2, 0, size[0], size[1]), fill=(30, 30, 200))
    return image


def centre_mask(
    size: tuple[int, int] = (64, 64), box: tuple[int, int, int, int] = (24, 24, 39, 39)
) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def img2img(url: str, **payload) -> requests.Response:
    return requests.post(f"{url}/sdapi/v1/img2img", json={**SMALL, **payload}, timeout=120)


def test_img2img_round_trip(running_app):
    _, url = running_app
    source = two_colours((96, 64))
    response = img2img(
        url, init_images=[b64(source)], denoising_strength=0.5, width=64, height=80, resize_mode=1
    )
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    [image] = [decode(text) for text in body["images"]]
    assert image.size == (64, 80)
    infotext = info["infotexts"][0]
    assert image.info["parameters"] == infotext
    assert (
        infotext.startswith("a red ball\n")
        and "Denoising strength: 0.5" in infotext
        and "Seed: 11," in infotext
    )
    assert info["denoising_strength"] == 0.5 and info["seed"] == 11
    # A1111 echoes the request without the images unless include_init_images is set
    assert body["parameters"]["init_images"] is None and body["parameters"]["denoising_strength"] == 0.5
    # the input matters: another image, same everything else, another result
    other = img2img(url, init_images=[b64(Image.new("RGB", (96, 64), "white"))], denoising_strength=0.5,
                    width=64, height=80, resize_mode=1).json()  # fmt: skip
    assert decode(other["images"][0]).tobytes() != image.tobytes()


def test_inpaint_keeps_pixels_outside_the_mask_and_accepts_data_urls(running_app):
    _, url = running_app
    source = two_colours()
    body = img2img(
        url,
        init_images=["data:image/png;base64," + b64(source)],
        mask="data:image/png;base64," + b64(centre_mask()),
        mask_blur=0, inpainting_fill=1, inpaint_full_res=False, denoising_strength=1.0,
        include_init_images=True,
    ).json()  # fmt: skip
    result = decode(body["images"][0]).convert("RGB")
    assert result.size == (64, 64)
    # far from the mask the input comes back exactly; inside it the model painted something else
    for corner in ((0, 0), (63, 0), (0, 63), (63, 63), (10, 32), (54, 32)):
        assert result.getpixel(corner) == source.getpixel(corner)
    assert result.crop((26, 26, 38, 38)).tobytes() != source.crop((26, 26, 38, 38)).tobytes()
    assert "Mask blur: 0" in json.loads(body["info"])["infotexts"][0]
    assert body["parameters"]["init_images"][0].startswith("data:image/png;base64,")  # echoed as sent
    assert body["parameters"]["mask"].startswith("data:image/png;base64,")


def test_inverted_mask_repaints_the_outside(running_app):
    _, url = running_app
    source = two_colours()
    body = img2img(
        url, init_images=[b64(source)], mask=b64(centre_mask()), mask_blur=0, inpainting_mask_invert=1,
        inpaint_full_res=False, denoising_strength=1.0,
    ).json()  # fmt: skip
    result = decode(body["images"][0]).convert("RGB")
    assert result.crop((28, 28, 36, 36)).tobytes() == source.crop((28, 28, 36, 36)).tobytes()
    assert result.crop((0, 0, 16, 16)).tobytes() != source.crop((0, 0, 16, 16)).tobytes()


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (64, 64), (0, 0, 0, 0)),  # transparent PNG
        Image.new("I;16", (64, 64), 40000),  # 16-bit greyscale
        Image.new("CMYK", (64, 64), (0, 200, 200, 0)),  # CMYK (sent as JPEG)
        Image.new("RGB", (200, 120), "green"),  # unlike the mask's and the output's size
    ],
    ids=["transparent", "16-bit", "cmyk", "other-size"],
)
def test_unusual_images_work(running_app, image: Image.Image):
    _, url = running_app
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    response = img2img(url, init_images=[b64(image, fmt)], mask=b64(centre_mask((32, 32))), steps=2)
    assert response.status_code == 200, response.text
    # "Only masked" (the API's default) pastes the result back into the whole input, as A1111 does
    assert decode(response.json()["images"][0]).size == image.size


def test_empty_mask_is_reported(running_app):
    _, url = running_app
    body = img2img(
        url, init_images=[b64(two_colours())], mask=b64(Image.new("L", (64, 64), 0)), steps=2
    ).json()
    assert any("mask is empty" in warning for warning in json.loads(body["info"])["warnings"])


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG whose header says width x height over the data of one pixel."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"init_images": ["@@not base64@@"]}, "init_images[0]: not valid base64"),
        ({"init_images": [base64.b64encode(b"just some text").decode()]}, "init_images[0]: not an image"),
        ({"init_images": [b64(two_colours())], "mask": "data:image/png;base64,AAAA"}, "mask: not an image"),
        ({"init_images": []}, "input image"),
        ({"init_images": ["https://example.com/cat.png"]}, "URLs are not fetched"),
        ({"init_images": [base64.b64encode(png_claiming_size(30000, 30000)).decode()]}, "too large"),
        ({"init_images": [base64.b64encode(png_claiming_size(64, 64)).decode()]}, "damaged image"),
        ({"init_images": [b64(Image.new("L", (6000, 6000)))]}, "megapixels"),  # decodes, but too big to use
        ({"init_images": [b64(two_colours())], "mask_blur_x": 2, "mask_blur_y": 6}, "mask_blur_x"),
        ({"init_images": [b64(two_colours())], "denoising_strength": 1.5}, "denoising_strength"),
        ({"init_images": [b64(two_colours())], "resize_mode": 7}, "resize_mode"),
        ({"init_images": [b64(two_colours())], "latent_mask": "x"}, "latent_mask"),
    ],
)
def test_bad_input_is_a_clear_422_and_the_server_keeps_serving(running_app, payload: dict, reason: str):
    _, url = running_app
    response = img2img(url, **payload)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert requests.get(f"{url}/sdapi/v1/samplers", timeout=30).status_code == 200
