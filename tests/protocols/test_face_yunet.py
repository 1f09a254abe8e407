"""The YuNet decoder on hand-made output tensors: positions, scores, NMS and scaling."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.face import yunet


def _outputs(height: int, width: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for s in yunet.STRIDES:
        cells = (height // s) * (width // s)
        out[f"cls_{s}"] = np.zeros((1, cells, 1), np.float32)
        out[f"obj_{s}"] = np.zeros((1, cells, 1), np.float32)
        out[f"bbox_{s}"] = np.zeros((1, cells, 4), np.float32)
        out[f"kps_{s}"] = np.zeros((1, cells, 10), np.float32)
    return out


def _put(out, stride, width, row, col, *, cls, obj, box=(0.5, 0.5, 1.0, 1.0)):
    idx = row * (width // stride) + col
    out[f"cls_{stride}"][0, idx, 0] = cls
    out[f"obj_{stride}"][0, idx, 0] = obj
    out[f"bbox_{stride}"][0, idx] = [box[0], box[1], np.log(box[2]), np.log(box[3])]
    out[f"kps_{stride}"][0, idx] = [0.2, 0.3, 0.8, 0.3, 0.5, 0.5, 0.3, 0.8, 0.7, 0.8]


def test_prepare_scales_the_long_side_and_pads_to_32() -> None:
    frame = np.full((480, 640, 3), 7, np.uint8)
    prepared = yunet.prepare(frame, 320)
    assert prepared.tensor.shape == (1, 3, 256, 320)
    assert prepared.scale == 2.0
    assert (prepared.width, prepared.height) == (320, 240)
    assert prepared.tensor[0, :, :240].min() == 7.0
    assert prepared.tensor[0, :, 240:].max() == 0.0  # padding


def test_decodes_a_cell_into_box_score_and_landmarks_in_source_pixels() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    prepared = yunet.prepare(frame, 320)  # scale 2
    out = _outputs(256, 320)
    _put(out, 16, 320, row=5, col=7, cls=0.81, obj=1.0, box=(0.5, 0.5, 4.0, 5.0))
    (det,) = yunet.decode(out, prepared, score_threshold=0.5)
    assert det.score == pytest.approx(0.9)
    # centre (7.5, 5.5) cells * 16 px = (120, 88) network px; size 64 x 80; times scale 2
    assert (det.x, det.y, det.w, det.h) == pytest.approx((2 * (120 - 32), 2 * (88 - 40), 128, 160))
    assert det.landmarks[0] == pytest.approx([2 * 7.2 * 16, 2 * 5.3 * 16])
    assert det.landmarks.shape == (5, 2)


def test_threshold_and_nms_keep_the_best_of_overlapping_boxes() -> None:
    prepared = yunet.prepare(np.zeros((320, 320, 3), np.uint8), 320)
    out = _outputs(320, 320)
    _put(out, 8, 320, row=10, col=10, cls=0.9, obj=0.9, box=(0.5, 0.5, 6, 6))
    _put(out, 8, 320, row=10, col=11, cls=0.95, obj=0.95, box=(0.5, 0.5, 6, 6))  # overlaps
    _put(out, 32, 320, row=1, col=8, cls=0.99, obj=0.99)  # elsewhere
    _put(out, 8, 320, row=30, col=30, cls=0.5, obj=0.5)  # below threshold
    found = yunet.decode(out, prepared, score_threshold=0.8)
    assert [round(d.score, 2) for d in found] == [0.99, 0.95]


def test_no_face_decodes_to_nothing() -> None:
    prepared = yunet.prepare(np.zeros((64, 64, 3), np.uint8), 320)
    assert yunet.decode(_outputs(64, 64), prepared) == []
