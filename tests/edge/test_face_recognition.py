"""The real models on real photos: who matches whom, and which photos enrollment refuses.

The measured scores are printed (pytest -s) and written down in docs/face.md.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from protocols.face.gallery import Gallery, Identity
from protocols.face.quality import ENROLLMENT_GATES, Reject
from protocols.face.threshold import DEFAULT_THRESHOLD
from tests.face_assets import PHOTOS, empty_frame, engine, photo, side_by_side


def _embedding(name: str) -> np.ndarray:
    main = engine().analyze(photo(name), gates=ENROLLMENT_GATES).main
    assert main is not None, f"{name}: no face"
    assert main.embedding is not None, f"{name}: refused {main.reject}"
    return main.embedding


def test_each_obama_enrolled_alone_matches_the_other_two_and_biden_never() -> None:
    vectors = {name: _embedding(name) for name in PHOTOS}
    obamas = [n for n in PHOTOS if n.startswith("obama")]
    for enrolled in obamas:
        gallery = Gallery([Identity("obama")], vectors[enrolled][None, :])
        for probe in obamas:
            if probe != enrolled:
                match = gallery.match(vectors[probe])
                assert match.score >= DEFAULT_THRESHOLD, (enrolled, probe, match.score)
        assert gallery.match(vectors["biden.jpg"]).score < DEFAULT_THRESHOLD
    for a, b in itertools.combinations(PHOTOS, 2):
        print(f"{a:<11} {b:<11} {float(vectors[a] @ vectors[b]):+.3f}")


def test_the_same_photo_embeds_the_same_whatever_the_call() -> None:
    first = _embedding("obama2.jpg")
    again = engine().embed_crops([])  # an empty batch is harmless
    assert again.shape == (0, 192)
    assert float(first @ _embedding("obama2.jpg")) == pytest.approx(1.0, abs=1e-6)


def test_enrollment_refuses_no_face_several_faces_small_and_blurred() -> None:
    eng = engine()
    assert eng.analyze(empty_frame(1, (800, 800)), gates=ENROLLMENT_GATES).faces == []
    assert eng.analyze(np.zeros((600, 600, 3), np.uint8), gates=ENROLLMENT_GATES).faces == []

    pair = eng.analyze(side_by_side(photo("obama.jpg"), photo("biden.jpg")), gates=ENROLLMENT_GATES)
    assert len(pair.faces) == 2

    big = photo("obama2.jpg")
    tiny = cv2.resize(big, (big.shape[1] // 6, big.shape[0] // 6), interpolation=cv2.INTER_AREA)
    (small,) = eng.analyze(tiny, gates=ENROLLMENT_GATES).faces
    assert small.reject is Reject.TOO_SMALL

    blurred = cv2.GaussianBlur(big, (0, 0), 6)
    (soft,) = eng.analyze(blurred, gates=ENROLLMENT_GATES).faces
    assert soft.reject is Reject.BLURRED, soft.sharpness
