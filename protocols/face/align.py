"""5-point similarity alignment to the ArcFace 112x112 template, in numpy.

The warp is written here rather than taken from OpenCV so the door and the cloud produce the
same pixels, hence the same embedding, for the same photo.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from protocols.face.contract import FloatArray, ImageArray

SIZE = 112
# ArcFace reference landmarks for a 112x112 crop, in YuNet's landmark order.
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
TEMPLATE_EYE_DISTANCE = float(np.linalg.norm(TEMPLATE[1] - TEMPLATE[0]))


def similarity(src: FloatArray, dst: npt.NDArray[np.float64] = TEMPLATE) -> FloatArray:
    """Least-squares rotation + uniform scale + translation taking `src` points onto `dst`
    (Umeyama 1991, reflection excluded). Returns the 2x3 forward matrix."""
    src64 = np.asarray(src, dtype=np.float64)
    dst64 = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src64.mean(axis=0), dst64.mean(axis=0)
    s_c, d_c = src64 - mu_s, dst64 - mu_d
    cov = d_c.T @ s_c / len(src64)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rot = u @ fix @ vt
    var_s = (s_c**2).sum() / len(src64)
    scale = float(np.trace(np.diag(sig) @ fix) / var_s) if var_s > 0 else 1.0
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]]).astype(np.float32)


@functools.cache
def _grid(size: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Destination pixel columns and rows (u, v) of a size x size crop."""
    grid_v, grid_u = np.mgrid[0:size, 0:size].astype(np.float64)
    grid_u.flags.writeable = grid_v.flags.writeable = False  # shared between calls
    return grid_u, grid_v


def warp(image: ImageArray, matrix: FloatArray, size: int = SIZE) -> ImageArray:
    """Bilinear inverse-mapped warp of an HxWx3 image to size x size; outside pixels are black."""
    m = np.vstack([matrix.astype(np.float64), [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(m)[:2]
    grid_u, grid_v = _grid(size)
    sx = inv[0, 0] * grid_u + inv[0, 1] * grid_v + inv[0, 2]
    sy = inv[1, 0] * grid_u + inv[1, 1] * grid_v + inv[1, 2]
    fx0, fy0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - fx0)[..., None], (sy - fy0)[..., None]
    x0, y0 = fx0.astype(np.intp), fy0.astype(np.intp)
    # Only the region the crop samples, with a one-pixel black border; everything further out
    # is clipped onto that border.
    h, w = image.shape[:2]
    left, top = int(np.clip(x0.min(), 0, w)), int(np.clip(y0.min(), 0, h))
    right, bottom = int(np.clip(x0.max() + 2, 0, w)), int(np.clip(y0.max() + 2, 0, h))
    region = image[top:bottom, left:right]
    rh, rw = region.shape[:2]
    channels = image.shape[2]
    padded = np.zeros((rh + 2, rw + 2, channels), dtype=np.float32)
    padded[1 : rh + 1, 1 : rw + 1] = region
    # Gathers on the flattened rows: the same samples as padded[y, x], a third of the time.
    flat = padded.reshape(-1, channels)
    row = rw + 2
    xa, xb = np.clip(x0 - left + 1, 0, rw + 1), np.clip(x0 - left + 2, 0, rw + 1)
    ya = np.clip(y0 - top + 1, 0, rh + 1) * row
    yb = np.clip(y0 - top + 2, 0, rh + 1) * row
    upper = flat.take(ya + xa, axis=0) * (1 - fx) + flat.take(ya + xb, axis=0) * fx
    lower = flat.take(yb + xa, axis=0) * (1 - fx) + flat.take(yb + xb, axis=0) * fx
    out = upper * (1 - fy) + lower * fy
    result: ImageArray = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return result


def downscale(image: ImageArray, factor: int) -> ImageArray:
    """Average `factor` x `factor` blocks (drops the ragged edge): anti-aliasing before a warp."""
    if factor <= 1:
        return image
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    acc = np.zeros((h // factor, w // factor, image.shape[2]), dtype=np.float32)
    for dy in range(factor):  # k*k strided adds beat a reshape-mean over strided axes
        for dx in range(factor):
            acc += image[dy:h:factor, dx:w:factor]
    return np.rint(acc / (factor * factor)).astype(np.uint8)


def align(image: ImageArray, landmarks: FloatArray, size: int = SIZE) -> ImageArray:
    """The 112x112 face crop. A face much larger than the template is first shrunk around its
    own region so bilinear sampling does not alias."""
    eye = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    factor = int(eye / TEMPLATE_EYE_DISTANCE / 1.5)
    if factor >= 2:
        h, w = image.shape[:2]
        centre = landmarks.mean(axis=0)
        reach = int(eye * 3)
        x0 = max(0, int(centre[0]) - reach)
        y0 = max(0, int(centre[1]) - reach)
        x1, y1 = min(w, int(centre[0]) + reach), min(h, int(centre[1]) + reach)
        image = downscale(image[y0:y1, x0:x1], factor)
        landmarks = ((landmarks - np.array([x0, y0], dtype=np.float32)) / factor).astype(np.float32)
    return warp(image, similarity(landmarks), size)
