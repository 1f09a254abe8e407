"""Quality gates: refuse faces too small, too blurred or too far from frontal to trust a match."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from protocols.face.contract import ImageArray
from protocols.face.yunet import Detection


class Reject(StrEnum):
    TOO_SMALL = "too_small"
    BLURRED = "blurred"
    NOT_FRONTAL = "not_frontal"


@dataclass(frozen=True, slots=True)
class Gates:
    """Thresholds. `min_face_px` is the shorter side of the detected box in source pixels;
    `min_sharpness` the variance of the Laplacian of the aligned grey 112x112 crop;
    `max_yaw` the nose's sideways offset from the eyes' midline over the eye distance;
    `max_roll_deg` the tilt of the line through the eyes."""

    min_face_px: float = 64.0
    min_sharpness: float = 60.0
    max_yaw: float = 0.35
    max_roll_deg: float = 25.0


DOOR_GATES = Gates()
ENROLLMENT_GATES = Gates(min_face_px=80.0, min_sharpness=80.0, max_yaw=0.25, max_roll_deg=20.0)


@dataclass(frozen=True, slots=True)
class Pose:
    yaw: float
    roll_deg: float


def pose(detection: Detection) -> Pose:
    """Yaw and roll estimated from the five landmarks alone."""
    eye_a, eye_b, nose = (detection.landmarks[i].astype(np.float64) for i in range(3))
    axis = eye_b - eye_a
    distance = float(np.hypot(*axis))
    if distance < 1e-6:
        return Pose(yaw=math.inf, roll_deg=90.0)
    roll = math.degrees(math.atan2(float(axis[1]), float(axis[0])))
    # signed distance of the nose from the perpendicular bisector of the eyes, in eye distances
    yaw = float(np.dot(nose - (eye_a + eye_b) / 2, axis / distance)) / distance
    return Pose(yaw=yaw, roll_deg=roll)


def sharpness(face: ImageArray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey crop (Pech-Pacheco et al. 2000)."""
    grey = face.astype(np.float32) @ np.array([0.114, 0.587, 0.299], dtype=np.float32)
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def check_geometry(detection: Detection, gates: Gates) -> Reject | None:
    """Gates that need no pixels: run before the (costlier) alignment."""
    if detection.size < gates.min_face_px:
        return Reject.TOO_SMALL
    p = pose(detection)
    if abs(p.yaw) > gates.max_yaw or abs(p.roll_deg) > gates.max_roll_deg:
        return Reject.NOT_FRONTAL
    return None


def check_sharpness(value: float, gates: Gates) -> Reject | None:
    return Reject.BLURRED if value < gates.min_sharpness else None
