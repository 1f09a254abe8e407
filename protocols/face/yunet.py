"""YuNet (2023mar) input preparation and output decoding, written out instead of cv2.FaceDetectorYN.

The model takes 1x3xHxW BGR 0-255 with H and W multiples of 32 and answers, per stride 8/16/32,
`cls`, `obj` (already sigmoid), `bbox` (cx, cy offsets in cells, log w/h) and `kps` (5 landmarks
in cells). Score = sqrt(cls x obj).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocols.face.contract import FloatArray, ImageArray

STRIDES = (8, 16, 32)
ALIGN = 32  # the network downsamples by 32: inputs are padded to a multiple of it


@dataclass(frozen=True, slots=True)
class Detection:
    """One face in source-image pixels. Landmarks, shape (5, 2): the eye on the image's left,
    the other eye, nose tip, mouth corner on the image's left, the other corner."""

    x: float
    y: float
    w: float
    h: float
    score: float
    landmarks: FloatArray

    @property
    def size(self) -> float:
        return min(self.w, self.h)

    def scaled(self, factor: float) -> Detection:
        return Detection(
            self.x * factor,
            self.y * factor,
            self.w * factor,
            self.h * factor,
            self.score,
            (self.landmarks * factor).astype(np.float32),
        )


@dataclass(frozen=True, slots=True)
class DetectorInput:
    tensor: FloatArray  # 1x3xHxW, zero-padded
    scale: float  # source pixels per network pixel
    width: int  # network width before padding
    height: int


def resize_nearest(image: ImageArray, width: int, height: int) -> ImageArray:
    """Nearest-neighbour resize with pixel-centre sampling: cheap, deterministic, numpy only."""
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image
    step = src_w // width
    if step * width == src_w and step * height == src_h:  # integer factor: a strided view
        view: ImageArray = image[step // 2 :: step, step // 2 :: step]
        return view
    ys = ((np.arange(height) + 0.5) * (src_h / height)).astype(np.intp)
    xs = ((np.arange(width) + 0.5) * (src_w / width)).astype(np.intp)
    out: ImageArray = image[ys[:, None], xs[None, :]]
    return out


def prepare(image_bgr: ImageArray, max_side: int) -> DetectorInput:
    """Scale the frame so its longer side is at most `max_side`, pad to a multiple of 32."""
    src_h, src_w = image_bgr.shape[:2]
    scale = max(1.0, max(src_w, src_h) / max_side)
    width, height = max(1, round(src_w / scale)), max(1, round(src_h / scale))
    small = resize_nearest(image_bgr, width, height)
    pad_w, pad_h = -(-width // ALIGN) * ALIGN, -(-height // ALIGN) * ALIGN
    tensor = np.zeros((1, 3, pad_h, pad_w), dtype=np.float32)
    tensor[0, :, :height, :width] = small.transpose(2, 0, 1)
    return DetectorInput(tensor, scale, width, height)


def output_names() -> list[str]:
    return [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES]


def decode(
    outputs: dict[str, FloatArray],
    prepared: DetectorInput,
    *,
    score_threshold: float = 0.8,
    nms_threshold: float = 0.3,
    top_k: int = 50,
) -> list[Detection]:
    """Decode all strides, keep scores above threshold, NMS, map back to source pixels."""
    _, _, pad_h, pad_w = prepared.tensor.shape
    boxes, scores, marks = [], [], []
    for stride in STRIDES:
        rows, cols = pad_h // stride, pad_w // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= score_threshold)
        if keep.size == 0:
            continue
        if cls.size != rows * cols:
            raise ValueError(f"stride {stride}: {cls.size} cells, expected {rows}x{cols}")
        r, c = np.divmod(keep, cols)
        anchors = np.stack([c, r], axis=1).astype(np.float32)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        centre = (anchors + bbox[:, :2]) * stride
        size = np.exp(bbox[:, 2:]) * stride
        boxes.append(np.concatenate([centre - size / 2, size], axis=1))
        kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
        marks.append((kps + anchors[:, None, :]) * stride)
        scores.append(score[keep])
    if not boxes:
        return []
    all_boxes = np.concatenate(boxes)
    all_scores = np.concatenate(scores)
    all_marks = np.concatenate(marks)
    chosen = nms(all_boxes, all_scores, nms_threshold)[:top_k]
    return [
        Detection(
            float(all_boxes[i, 0]),
            float(all_boxes[i, 1]),
            float(all_boxes[i, 2]),
            float(all_boxes[i, 3]),
            float(all_scores[i]),
            all_marks[i].astype(np.float32),
        ).scaled(prepared.scale)
        for i in chosen
    ]


def nms(boxes: FloatArray, scores: FloatArray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression over (x, y, w, h) boxes, best score first."""
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    areas = boxes[:, 2] * boxes[:, 3]
    order: npt.NDArray[np.intp] = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return keep
