"""Cut a detected face out as the aligned 512² crop face restorers expect, and paste a restored crop back.

GFPGAN and CodeFormer were trained on FFHQ-aligned faces: the five landmarks (both eyes, nose tip, both
mouth corners) at fixed places of a 512² square. A similarity transform (rotation, uniform scale,
translation) maps the detected landmarks onto those places; its inverse puts the restored crop back,
blended in with a mask whose edge is eroded and blurred in proportion to the face, so no seam shows.
"""

from __future__ import annotations

import math

import cv2
import numpy

FACE_SIZE = 512
# The FFHQ 5-point template at 512² (x, y): the eye on the image's left, the other eye, the nose tip, the
# mouth corner on the image's left, the other one. The same numbers GFPGAN's and CodeFormer's alignment use.
FFHQ_TEMPLATE = numpy.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.19360],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=numpy.float32,
)
# What the crop shows where the face reaches past the picture's edge: a neutral grey.
BORDER_VALUE = (135, 133, 132)


def alignment(landmarks: numpy.ndarray) -> numpy.ndarray:
    """The 2x3 similarity transform taking the image's five landmarks ((5, 2), template order) onto the
    FFHQ template. Least median of squares, so one badly placed landmark does not skew the face."""
    points = numpy.asarray(landmarks, dtype=numpy.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(points, FFHQ_TEMPLATE, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks (all on one point): no transform exists
        raise ValueError("the face landmarks do not define an alignment")
    return matrix


def crop_face(image: numpy.ndarray, matrix: numpy.ndarray) -> numpy.ndarray:
    """The aligned FACE_SIZE² crop of the RGB uint8 `image` under `matrix`."""
    return cv2.warpAffine(
        image,
        matrix,
        (FACE_SIZE, FACE_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BORDER_VALUE,
    )


def paste_mask(matrix: numpy.ndarray, width: int, height: int) -> numpy.ndarray:
    """Float mask (height, width) in [0, 1]: 1 inside the crop's footprint on the image, falling off
    smoothly towards its edge over about a tenth of the face's size."""
    inverse = cv2.invertAffineTransform(matrix)
    square = numpy.ones((FACE_SIZE, FACE_SIZE), dtype=numpy.float32)
    mask = cv2.warpAffine(square, inverse, (width, height), flags=cv2.INTER_LINEAR)
    # The footprint's side on the image, from the transform's scale.
    side = FACE_SIZE / math.hypot(matrix[0, 0], matrix[0, 1])
    edge = max(1, int(side / 20))
    mask = cv2.erode(mask, numpy.ones((2 * edge + 1, 2 * edge + 1), numpy.uint8))
    blur = 2 * edge + 1
    return numpy.clip(cv2.GaussianBlur(mask, (blur, blur), 0), 0.0, 1.0)


def paste_face(image: numpy.ndarray, face: numpy.ndarray, matrix: numpy.ndarray) -> numpy.ndarray:
    """`image` (RGB uint8) with the restored aligned crop `face` put back where `matrix` took it from."""
    height, width = image.shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    placed = cv2.warpAffine(face, inverse, (width, height), flags=cv2.INTER_LINEAR)
    mask = paste_mask(matrix, width, height)[:, :, None]
    blended = mask * placed.astype(numpy.float32) + (1.0 - mask) * image.astype(numpy.float32)
    return numpy.clip(numpy.rint(blended), 0, 255).astype(numpy.uint8)
