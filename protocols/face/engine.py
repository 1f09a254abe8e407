"""Detect → gates → align → embed for one image, with the two models injected as runners."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from protocols.face import align, yunet
from protocols.face.contract import RECOGNIZER, FloatArray, ImageArray, Runner, l2_normalise
from protocols.face.quality import (
    DOOR_GATES,
    Gates,
    Reject,
    check_geometry,
    check_sharpness,
    sharpness,
)

RECOGNIZER_BATCH = 4  # crops per run; the converted recognizer takes any batch


def _no_clock() -> float:
    return 0.0


@dataclass(frozen=True, slots=True)
class Face:
    detection: yunet.Detection
    reject: Reject | None
    embedding: FloatArray | None = None
    sharpness: float | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    faces: list[Face]  # largest first
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def main(self) -> Face | None:
        return self.faces[0] if self.faces else None


class FaceEngine:
    """Stateless apart from its runners; `clock` (seconds, monotonic) only feeds the timings."""

    def __init__(
        self,
        detector: Runner,
        recognizer: Runner,
        *,
        detect_side: int = 320,
        score_threshold: float = 0.8,
        clock: Callable[[], float] = _no_clock,
    ) -> None:
        self._detector = detector
        self._recognizer = recognizer
        self.detect_side = detect_side
        self.score_threshold = score_threshold
        self._clock = clock

    def detect(self, image_bgr: ImageArray) -> list[yunet.Detection]:
        prepared = yunet.prepare(image_bgr, self.detect_side)
        outputs = self._detector({"input": prepared.tensor})
        names = yunet.output_names()
        found = yunet.decode(
            dict(zip(names, outputs, strict=True)), prepared, score_threshold=self.score_threshold
        )
        return sorted(found, key=lambda d: -d.w * d.h)

    def embed_crops(self, crops: list[ImageArray]) -> FloatArray:
        """L2-normalised embeddings of aligned 112x112 BGR crops."""
        out: list[FloatArray] = []
        for start in range(0, len(crops), RECOGNIZER_BATCH):
            chunk = crops[start : start + RECOGNIZER_BATCH]
            batch = np.zeros((len(chunk), 3, align.SIZE, align.SIZE), dtype=np.float32)
            for i, crop in enumerate(chunk):
                rgb = crop[:, :, ::-1].astype(np.float32)
                batch[i] = ((rgb - 127.5) / 128.0).transpose(2, 0, 1)
            (vectors,) = self._recognizer({"input": batch})
            out.extend(vectors)
        if not out:
            return np.zeros((0, RECOGNIZER.dim), dtype=np.float32)
        return l2_normalise(np.asarray(out, dtype=np.float32))

    def analyze(
        self, image_bgr: ImageArray, *, gates: Gates = DOOR_GATES, embed_at_most: int = 1
    ) -> Analysis:
        """All faces found, each gated; embeddings for the `embed_at_most` largest that pass."""
        clock = self._clock
        t0 = clock()
        detections = self.detect(image_bgr)
        t1 = clock()
        faces: list[Face] = []
        crops: list[tuple[int, ImageArray]] = []
        for det in detections:
            reject = check_geometry(det, gates)
            if reject is None and len(crops) < embed_at_most:
                crop = align.align(image_bgr, det.landmarks)
                sharp = sharpness(crop)
                reject = check_sharpness(sharp, gates)
                if reject is None:
                    crops.append((len(faces), crop))
                faces.append(Face(det, reject, sharpness=sharp))
            else:
                faces.append(Face(det, reject))
        t2 = clock()
        vectors = self.embed_crops([c for _, c in crops])
        for (index, _), vector in zip(crops, vectors, strict=True):
            face = faces[index]
            faces[index] = Face(face.detection, None, vector, face.sharpness)
        t3 = clock()
        timings = {
            "detect": (t1 - t0) * 1000,
            "align": (t2 - t1) * 1000,
            "embed": (t3 - t2) * 1000,
        }
        return Analysis(faces, timings)


class Session(Protocol):
    """What we use of onnxruntime.InferenceSession."""

    def run(
        self, output_names: None, input_feed: Mapping[str, FloatArray]
    ) -> Sequence[FloatArray]: ...


def session_runner(session: Session) -> Runner:
    def run(feeds: Mapping[str, FloatArray]) -> list[FloatArray]:
        return list(session.run(None, feeds))

    return run
