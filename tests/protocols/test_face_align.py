"""Similarity alignment maths: the transform is recovered, the warp moves pixels where it says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from protocols.face import align


def _transform(points: np.ndarray, scale: float, angle_deg: float, shift: tuple[float, float]):
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (scale * points @ rot.T + np.array(shift)).astype(np.float32)


def test_template_onto_itself_is_the_identity() -> None:
    m = align.similarity(align.TEMPLATE.astype(np.float32))
    assert m == pytest.approx(np.array([[1, 0, 0], [0, 1, 0]]), abs=1e-5)


def test_recovers_scale_rotation_and_shift() -> None:
    src = _transform(align.TEMPLATE, 2.5, 17.0, (300.0, 120.0))
    m = align.similarity(src)
    back = src @ m[:, :2].T + m[:, 2]
    assert back == pytest.approx(align.TEMPLATE, abs=1e-3)
    assert math.hypot(m[0, 0], m[1, 0]) == pytest.approx(1 / 2.5, rel=1e-4)


def test_warp_puts_the_landmark_pixels_on_the_template() -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    src = _transform(align.TEMPLATE, 1.5, -10.0, (120.0, 90.0))
    for x, y in src:
        image[round(y) - 1 : round(y) + 2, round(x) - 1 : round(x) + 2] = 255
    crop = align.align(image, src)
    assert crop.shape == (112, 112, 3)
    for x, y in align.TEMPLATE:
        assert crop[round(y), round(x)].max() > 100
    assert crop[5, 5].max() == 0


def test_a_large_face_is_shrunk_before_warping_and_lands_in_the_same_place() -> None:
    image = np.zeros((1200, 1200, 3), np.uint8)
    src = _transform(align.TEMPLATE, 5.0, 0.0, (200.0, 150.0))
    for x, y in src:
        image[round(y) - 5 : round(y) + 6, round(x) - 5 : round(x) + 6] = 255
    crop = align.align(image, src)
    for x, y in align.TEMPLATE:
        assert crop[round(y), round(x)].max() > 100


def test_downscale_averages_blocks() -> None:
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 10
    small = align.downscale(image, 2)
    assert small[:, :, 0].tolist() == [[25, 45], [105, 125]]
