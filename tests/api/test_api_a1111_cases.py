"""A1111's own API test cases (its test/test_txt2img.py, test_img2img.py, test_extras.py payloads, with
checks on the answers added), then the API's utility routes, styles, override_settings and previews.

All on a real server at 127.0.0.1 over the tiny SD1 checkpoint, through plain HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from webui.core import infotext

TIMEOUT = 120


def post(url: str, route: str, payload: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/sdapi/v1/{route}", json=payload, timeout=TIMEOUT)


def get(url: str, route: str) -> Any:
    response = requests.get(f"{url}/sdapi/v1/{route}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def encode(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def infotexts(body: dict[str, Any]) -> list[str]:
    return json.loads(body["info"])["infotexts"]


@pytest.fixture()
def simple_txt2img_request() -> dict[str, Any]:
    """A1111's payload, as its tests send it."""
    return {
        "batch_size": 1,
        "cfg_scale": 7,
        "denoising_strength": 0,
        "enable_hr": False,
        "eta": 0,
        "firstphase_height": 0,
        "firstphase_width": 0,
        "height": 64,
        "n_iter": 1,
        "negative_prompt": "",
        "prompt": "example prompt",
        "restore_faces": False,
        "s_churn": 0,
        "s_noise": 1,
        "s_tmax": 0,
        "s_tmin": 0,
        "sampler_index": "Euler a",
        "seed": -1,
        "seed_resize_from_h": -1,
        "seed_resize_from_w": -1,
        "steps": 3,
        "styles": [],
        "subseed": -1,
        "subseed_strength": 0,
        "tiling": False,
        "width": 64,
    }


@pytest.fixture(scope="module")
def basic_image() -> Image.Image:
    image = Image.new("RGB", (64, 64), (40, 90, 200))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(230, 200, 30))
    return image


@pytest.fixture(scope="module")
def mask_image() -> Image.Image:
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((20, 20, 44, 44), fill=255)
    return mask


@pytest.fixture()
def simple_img2img_request(basic_image: Image.Image) -> dict[str, Any]:
    """A1111's img2img payload, as its tests send it."""
    return {
        "batch_size": 1,
        "cfg_scale": 7,
        "denoising_strength": 0.75,
        "eta": 0,
        "height": 64,
        "include_init_images": False,
        "init_images": [encode(basic_image)],
        "inpaint_full_res": False,
        "inpaint_full_res_padding": 0,
        "inpainting_fill": 0,
        "inpainting_mask_invert": False,
        "mask": None,
        "mask_blur": 4,
        "n_iter": 1,
        "negative_prompt": "",
        "override_settings": {},
        "prompt": "example prompt",
        "resize_mode": 0,
        "restore_faces": False,
        "s_churn": 0,
        "s_noise": 1,
        "s_tmax": 0,
        "s_tmin": 0,
        "sampler_index": "Euler a",
        "seed": -1,
        "seed_resize_from_h": -1,
        "seed_resize_from_w": -1,
        "steps": 3,
        "styles": [],
        "subseed": -1,
        "subseed_strength": 0,
        "tiling": False,
        "width": 64,
    }


# test_txt2img.py


def test_txt2img_simple_performed(running_app, simple_txt2img_request):
    _, url = running_app
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert [decode(image).size for image in body["images"]] == [(64, 64)]
    assert infotexts(body)[0].startswith("example prompt\nSteps: 3, Sampler: Euler a, ")


def test_txt2img_with_negative_prompt_performed(running_app, simple_txt2img_request):
    _, url = running_app
    simple_txt2img_request["negative_prompt"] = "example negative prompt"
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert "\nNegative prompt: example negative prompt\n" in infotexts(body)[0]


def test_txt2img_with_complex_prompt_performed(running_app, simple_txt2img_request):
    _, url = running_app
    prompt = "((emphasis)), (emphasis1:1.1), [to:1], [from::2], [from:to:0.3], [alt|alt1]"
    simple_txt2img_request["prompt"] = prompt
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert infotext.parse(infotexts(body)[0])["Prompt"] == prompt


def test_txt2img_not_square_image_performed(running_app, simple_txt2img_request):
    _, url = running_app
    simple_txt2img_request["height"] = 128
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert decode(body["images"][0]).size == (64, 128)


def test_txt2img_with_restore_faces_names_the_files_to_place(running_app, simple_txt2img_request):
    # A1111's test expects it to run; it runs once the user placed the restorer and the face detector
    # (tests/api/test_face_restoration_api.py), and until then the API names the files and the folder.
    app, url = running_app
    simple_txt2img_request["restore_faces"] = True
    response = post(url, "txt2img", simple_txt2img_request)
    detail = response.json()["detail"]
    folder = app.paths.models_dir / "GFPGAN"
    assert response.status_code == 422
    assert f"GFPGANv1.4.pth in {folder}" in detail and "face_detection_yunet_2023mar.onnx" in detail


def test_txt2img_with_tiling_performed(running_app, simple_txt2img_request):
    _, url = running_app
    simple_txt2img_request.update(tiling=True, sampler_index="Euler")
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert ", Tiling: True" in infotexts(body)[0]


@pytest.mark.parametrize("sampler", ["PLMS", "DDIM", "UniPC"])
def test_txt2img_with_vanilla_sampler_performed(running_app, simple_txt2img_request, sampler):
    _, url = running_app
    simple_txt2img_request["sampler_index"] = sampler
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert f"Sampler: {sampler}," in infotexts(body)[0]


def test_txt2img_multiple_batches_performed(running_app, simple_txt2img_request):
    _, url = running_app
    simple_txt2img_request.update(n_iter=2, seed=100)
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert len(body["images"]) == 2 and json.loads(body["info"])["all_seeds"] == [100, 101]


def test_txt2img_batch_performed(running_app, simple_txt2img_request):
    _, url = running_app
    simple_txt2img_request.update(batch_size=2, seed=200)
    body = ok(post(url, "txt2img", simple_txt2img_request))
    first, second = (decode(image) for image in body["images"])
    assert json.loads(body["info"])["all_seeds"] == [200, 201] and first.tobytes() != second.tobytes()


# test_img2img.py (they need the /sdapi/v1/img2img route)


def test_img2img_simple_performed(running_app, simple_img2img_request):
    _, url = running_app
    body = ok(post(url, "img2img", simple_img2img_request))
    assert decode(body["images"][0]).size == (64, 64)
    assert "Denoising strength: 0.75" in infotexts(body)[0]


def test_inpainting_masked_performed(running_app, simple_img2img_request, mask_image, basic_image):
    _, url = running_app
    simple_img2img_request.update(mask=encode(mask_image), denoising_strength=1.0, inpainting_fill=1)
    image = decode(ok(post(url, "img2img", simple_img2img_request))["images"][0]).convert("RGB")
    # Outside the mask the picture stays (apart from the blurred edge); inside it is repainted.
    assert image.getpixel((2, 2)) == basic_image.getpixel((2, 2))
    assert image.getpixel((32, 32)) != basic_image.getpixel((32, 32))


def test_inpainting_with_inverted_masked_performed(
    running_app, simple_img2img_request, mask_image, basic_image
):
    _, url = running_app
    simple_img2img_request.update(
        mask=encode(mask_image), inpainting_mask_invert=True, denoising_strength=1.0, inpainting_fill=1
    )
    image = decode(ok(post(url, "img2img", simple_img2img_request))["images"][0]).convert("RGB")
    assert image.getpixel((32, 32)) == basic_image.getpixel((32, 32))  # now the inside is kept
    assert image.getpixel((2, 2)) != basic_image.getpixel((2, 2))


# test_extras.py


def test_simple_upscaling_performed(running_app, basic_image):
    _, url = running_app
    payload = {
        "resize_mode": 0,
        "show_extras_results": True,
        "gfpgan_visibility": 0,
        "codeformer_visibility": 0,
        "codeformer_weight": 0,
        "upscaling_resize": 2,
        "upscaling_resize_w": 128,
        "upscaling_resize_h": 128,
        "upscaling_crop": True,
        "upscaler_1": "Lanczos",
        "upscaler_2": "None",
        "extras_upscaler_2_visibility": 0,
        "image": encode(basic_image),
    }
    body = ok(post(url, "extra-single-image", payload))
    result = decode(body["image"])
    assert result.size == (128, 128)
    assert (
        result.convert("RGB").tobytes() == basic_image.resize((128, 128), Image.Resampling.LANCZOS).tobytes()
    )
    assert "Postprocess upscale by: 2, Postprocess upscaler: Lanczos" in body["html_info"]
    assert result.info["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"


def test_png_info_performed(running_app, basic_image):
    # A1111's test posts only an image to extra-single-image: the "None" upscaler hands it back as it is.
    _, url = running_app
    body = ok(post(url, "extra-single-image", {"image": encode(basic_image)}))
    assert decode(body["image"]).convert("RGB").tobytes() == basic_image.tobytes()


@pytest.mark.parametrize(
    ("payload", "size", "info"),
    [
        (
            {"resize_mode": 1, "upscaling_resize_w": 96, "upscaling_resize_h": 64, "upscaler_1": "Nearest"},
            (96, 64),
            "Postprocess upscale to: 96x64, Postprocess upscaler: Nearest, Postprocess crop to: 96x64",
        ),
        (
            {
                "resize_mode": 1,
                "upscaling_resize_w": 96,
                "upscaling_resize_h": 64,
                "upscaling_crop": False,
                "upscaler_1": "Lanczos",
            },
            (96, 96),
            "Postprocess upscale to: 96x64, Postprocess upscaler: Lanczos",
        ),
        ({"upscaling_resize": 0.5, "upscaler_1": "Nearest"}, (32, 32), "Postprocess upscale by: 0.5"),
    ],
)
def test_extras_scale_to_and_down(running_app, basic_image, payload, size, info):
    _, url = running_app
    body = ok(post(url, "extra-single-image", {"image": encode(basic_image), **payload}))
    assert decode(body["image"]).size == size
    assert info in body["html_info"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"upscaler_1": "R-ESRGAN 4x+"}, "Lanczos"),
        ({"upscaler_1": "Lanczos", "upscaling_resize": 1000}, "8192"),
        ({"codeformer_visibility": 1}, "face restoration"),
        ({"image": "bm90IGFuIGltYWdl"}, "image"),
        ({"image": "http://example.com/a.png"}, "base64"),
    ],
)
def test_extras_bad_requests_name_the_problem(running_app, basic_image, payload, reason):
    _, url = running_app
    response = post(url, "extra-single-image", {"image": encode(basic_image), **payload})
    assert response.status_code == 422 and reason in response.json()["detail"]


# png-info


def test_our_png_round_trips_through_png_info_to_identical_parameters(running_app, simple_txt2img_request):
    app, url = running_app
    simple_txt2img_request.update(
        prompt="a (red:1.2) cube, [x|y]",
        negative_prompt="blurry, dark",
        seed=77,
        sampler_name="DPM++ 2M",
        scheduler="Karras",
        height=96,
        cfg_scale=6.5,
        save_images=True,
        override_settings={"CLIP_stop_at_last_layers": 2},
    )
    body = ok(post(url, "txt2img", simple_txt2img_request))
    saved = Path(json.loads(body["info"])["images_saved"][0])
    info = ok(post(url, "png-info", {"image": base64.b64encode(saved.read_bytes()).decode()}))
    assert info["info"] == infotexts(body)[0]
    fields = info["parameters"]
    assert (fields["Prompt"], fields["Negative prompt"]) == ("a (red:1.2) cube, [x|y]", "blurry, dark")
    assert (fields["Steps"], fields["Seed"], fields["CFG scale"], fields["Clip skip"]) == (
        "3",
        "77",
        "6.5",
        "2",
    )
    assert (fields["Sampler"], fields["Schedule type"], fields["Size-1"], fields["Size-2"]) == (
        "DPM++ 2M",
        "Karras",
        "64",
        "96",
    )
    assert fields["Model"] == app.registry.entries[0].model_name and "Size" not in fields
    # The parameters read back make the same image again.
    again = infotext.to_params(infotext.parse(info["info"]))
    replay = ok(
        post(
            url,
            "txt2img",
            {
                "prompt": again.prompt,
                "negative_prompt": again.negative_prompt,
                "steps": again.steps,
                "cfg_scale": again.cfg_scale,
                "sampler_name": again.sampler_name,
                "scheduler": again.scheduler,
                "seed": again.seed,
                "width": again.width,
                "height": again.height,
                "override_settings": {"CLIP_stop_at_last_layers": again.clip_skip},
            },
        )
    )
    assert infotexts(replay)[0] == info["info"]
    assert decode(replay["images"][0]).tobytes() == Image.open(saved).tobytes()


def test_png_info_of_a_plain_image_and_a_foreign_one(running_app, basic_image):
    _, url = running_app
    assert ok(post(url, "png-info", {"image": encode(basic_image)})) == {
        "info": "",
        "items": {},
        "parameters": {},
    }
    foreign = io.BytesIO()
    from PIL.PngImagePlugin import PngInfo

    chunks = PngInfo()
    chunks.add_text(
        "parameters", "a cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 512x768"
    )
    chunks.add_text("Software", "other tool")
    basic_image.save(foreign, format="PNG", pnginfo=chunks)
    body = ok(
        post(
            url,
            "png-info",
            {"image": "data:image/png;base64," + base64.b64encode(foreign.getvalue()).decode()},
        )
    )
    assert body["items"] == {"Software": "other tool"}
    fields = body["parameters"]
    assert (fields["Sampler"], fields["Schedule type"]) == (
        "DPM++ 2M Karras",
        "Automatic",
    )  # as A1111 reads it
    assert (fields["Size-1"], fields["Size-2"], fields["Clip skip"], fields["RNG"]) == (
        "512",
        "768",
        "1",
        "GPU",
    )


# utility routes


def test_upscalers_cmd_flags_memory(running_app):
    app, url = running_app
    assert [item["name"] for item in get(url, "upscalers")] == ["None", "Lanczos", "Nearest"]
    assert set(get(url, "upscalers")[1]) == {"name", "model_name", "model_path", "model_url", "scale"}
    flags = get(url, "cmd-flags")
    assert flags["api"] is True and flags["data_dir"] == app.args.data_dir and flags["port"] == 7860
    memory = get(url, "memory")
    assert 0 < memory["ram"]["used"] < memory["ram"]["total"]
    assert memory["cuda"] == {"error": "unavailable"} or "system" in memory["cuda"]


def test_embeddings_are_split_by_fit(running_app):
    app, url = running_app
    width = app.manager.current.pipe.text_encoder.get_input_embeddings().weight.shape[1]
    folder = app.paths.embeddings_dir
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"emb_params": torch.zeros(3, width)}, folder / "fits.safetensors")
    save_file({"emb_params": torch.zeros(2, width + 8)}, folder / "other-model.safetensors")
    try:
        body = get(url, "embeddings")
        assert body["loaded"] == {
            "fits": {
                "step": None,
                "sd_checkpoint": None,
                "sd_checkpoint_name": None,
                "shape": width,
                "vectors": 3,
            }
        }
        assert (
            list(body["skipped"]) == ["other-model"] and body["skipped"]["other-model"]["shape"] == width + 8
        )
    finally:
        for path in folder.iterdir():
            path.unlink()


def test_prompt_styles_saved_listed_applied_and_deleted(running_app, simple_txt2img_request):
    app, url = running_app
    assert get(url, "prompt-styles") == []
    saved = ok(
        post(
            url,
            "prompt-styles",
            {"name": "oil", "prompt": "oil painting of {prompt}", "negative_prompt": "photo"},
        )
    )
    assert saved == {"name": "oil", "prompt": "oil painting of {prompt}", "negative_prompt": "photo"}
    ok(post(url, "prompt-styles", {"name": "hd", "prompt": "hd"}))
    assert [style["name"] for style in get(url, "prompt-styles")] == ["oil", "hd"]
    assert "oil,oil painting of {prompt},photo" in app.paths.styles_file.read_text(encoding="utf-8-sig")
    simple_txt2img_request.update(prompt="a boat", negative_prompt="ugly", styles=["oil", "hd"])
    body = ok(post(url, "txt2img", simple_txt2img_request))
    assert infotexts(body)[0].startswith("oil painting of a boat, hd\nNegative prompt: ugly, photo\n")
    assert json.loads(body["info"])["styles"] == ["oil", "hd"]
    simple_txt2img_request["styles"] = ["nope"]
    missing = post(url, "txt2img", simple_txt2img_request)
    assert missing.status_code == 422 and "nope" in missing.json()["detail"]
    assert requests.delete(f"{url}/sdapi/v1/prompt-styles/oil", timeout=TIMEOUT).status_code == 200
    assert [style["name"] for style in get(url, "prompt-styles")] == ["hd"]
    app.styles.delete("hd")


# override_settings


def test_override_settings_hold_for_one_request(running_app, simple_txt2img_request):
    app, url = running_app
    simple_txt2img_request.update(
        seed=5, save_images=True, override_settings={"samples_format": "jpg", "CLIP_stop_at_last_layers": 2}
    )
    info = json.loads(ok(post(url, "txt2img", simple_txt2img_request))["info"])
    assert info["images_saved"][0].endswith("-5.jpg") and "Clip skip: 2," in info["infotexts"][0]
    options = get(url, "options")
    assert (options["samples_format"], options["CLIP_stop_at_last_layers"]) == ("png", 1)
    saved = json.loads(app.paths.config_file.read_text()) if app.paths.config_file.exists() else {}
    assert saved.get("samples_format", "png") == "png"  # an override is never written to config.json


def test_override_settings_kept_when_not_restored(running_app, simple_txt2img_request):
    app, url = running_app
    simple_txt2img_request.update(
        override_settings={"jpeg_quality": 55}, override_settings_restore_afterwards=False
    )
    ok(post(url, "txt2img", simple_txt2img_request))
    try:
        assert get(url, "options")["jpeg_quality"] == 55
        assert json.loads(app.paths.config_file.read_text())["jpeg_quality"] == 55
    finally:
        app.update_options({"jpeg_quality": 80})


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({"samples_format": "tiff"}, 422, "tiff"),
        ({"sd_vae": "missing.safetensors"}, 404, "missing"),
        ({"sd_model_checkpoint": "nope"}, 404, "nope"),
        ({"not_an_option": 1}, 422, "not_an_option"),
    ],
)
def test_bad_override_settings_fail_before_queueing(
    running_app, simple_txt2img_request, overrides, status, reason
):
    _, url = running_app
    simple_txt2img_request["override_settings"] = overrides
    response = post(url, "txt2img", simple_txt2img_request)
    assert response.status_code == status and reason in response.json()["detail"]


# progress with live previews


def test_progress_shows_a_live_preview(running_app, simple_txt2img_request):
    app, url = running_app
    ok(post(url, "options", {"show_progress_every_n_steps": 1}))
    simple_txt2img_request.update(steps=150, width=64, height=96)
    outcome: dict[str, requests.Response] = {}
    worker = threading.Thread(target=lambda: outcome.update(r=post(url, "txt2img", simple_txt2img_request)))
    worker.start()
    try:
        preview = None
        deadline = time.monotonic() + 60
        while preview is None and time.monotonic() < deadline:
            preview = get(url, "progress")["current_image"]
            time.sleep(0.05)
        factor = app.manager.current.pipe.vae_scale_factor
        assert preview is not None and decode(preview).size == (
            64 // factor,
            96 // factor,
        )  # the latent's size
        assert (
            requests.get(f"{url}/sdapi/v1/progress?skip_current_image=true", timeout=TIMEOUT).json()[
                "current_image"
            ]
            is None
        )
    finally:
        requests.post(f"{url}/sdapi/v1/interrupt", timeout=TIMEOUT)
        worker.join(60)
        ok(post(url, "options", {"show_progress_every_n_steps": 10}))
    assert outcome["r"].status_code == 200
