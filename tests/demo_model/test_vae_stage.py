"""The VAE's edge-aware reconstruction loss and the VAE check that measures what a VAE keeps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from tools.demo_model import data
from tools.demo_model.corpus import render_pixels, to_model_range
from tools.demo_model.data import Combo, Scene
from tools.demo_model.models import TINY, build_vae
from tools.demo_model.vae_check import check_vae
from tools.demo_model.vae_stage import outline_pixels, reconstruction_loss

SCENE = Scene(Combo("triangle", "red", "blue", "center", "small"), 32.0, 32.0, 6.0)


def _image() -> torch.Tensor:
    return to_model_range(render_pixels([SCENE]))


def test_outline_pixels_follow_the_shapes_edge_and_nothing_else() -> None:
    outline = outline_pixels(_image())[0, 0].bool().numpy()
    cover, mask = data.coverage(SCENE), data.shape_mask(SCENE)
    edge = ((cover > 0) & (cover < 1)) | (mask & ~ndimage.binary_erosion(mask))
    # a colour step is marked on one of its two pixels, then widened by one pixel
    near = ndimage.binary_dilation(edge, structure=np.ones((3, 3)), iterations=2)
    assert outline[edge].all() and not (outline & ~near).any()
    assert not outline[32, 32] and not outline[5, 5]  # inside the shape, far out in the background
    assert not outline_pixels(torch.zeros(1, 3, 16, 16)).any()  # a flat image has no outline


def test_reconstruction_loss_is_l1_without_edge_weight_and_weighs_edge_errors_more() -> None:
    image = _image()
    blurred = F.avg_pool2d(image, 3, stride=1, padding=1, count_include_pad=False)  # rounds the corners
    tinted = image + (blurred - image).abs().mean()  # the same L1 error, spread evenly
    assert torch.allclose(reconstruction_loss(blurred, image, 0.0), F.l1_loss(blurred, image))
    assert torch.allclose(reconstruction_loss(tinted, image, 0.0), reconstruction_loss(blurred, image, 0.0))
    assert reconstruction_loss(blurred, image, 10.0) > 2 * reconstruction_loss(tinted, image, 10.0)


def test_vae_check_reads_back_what_the_vae_keeps() -> None:
    """An untrained VAE keeps nothing of the shape; an identity-like stand-in is not needed: the scorer
    on perfect renders is tested in test_score.py."""
    torch.manual_seed(0)
    figures = check_vae(build_vae(TINY).eval(), count=8)
    assert figures.accuracy["shape"] < 0.5 and figures.pixel_error > 20
    assert len(figures.lines()) == 2
