"""Gallery top-1 matching, the embedding contract, N-of-M confirmation and the quality gates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from protocols.face import contract
from protocols.face.confirm import Confirmer, Reason, Verdict
from protocols.face.gallery import Gallery, GalleryExport, Identity, Match, export_contract
from protocols.face.quality import DOOR_GATES, Reject, check_geometry, pose, sharpness
from protocols.face.yunet import Detection

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    return contract.l2_normalise(rng.standard_normal((n, 192)).astype(np.float32))


def test_gallery_returns_the_best_row_and_its_identity() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 1000)
    people = [Identity(f"p{i // 2}") for i in range(1000)]  # two photos each
    gallery = Gallery(people, vectors)
    probe = contract.l2_normalise(vectors[777] + 0.1 * _unit(rng, 1)[0])
    match = gallery.match(probe)
    assert match.identity == Identity("p388")
    assert match.score == pytest.approx(float(probe @ vectors[777]), abs=1e-5)


def test_empty_gallery_matches_nobody() -> None:
    assert Gallery.empty().match(np.ones(192, np.float32)) == Match(None, -1.0)


def test_embeddings_round_trip_and_refuse_another_contract() -> None:
    v = _unit(np.random.default_rng(2), 1)[0]
    assert np.array_equal(contract.embedding_from_text(contract.embedding_to_text(v)), v)
    with pytest.raises(contract.FaceError, match="does not fit"):
        contract.decode_embedding(b"\0" * 128 * 4)
    with pytest.raises(contract.FaceError, match="made under"):
        contract.check_contract({"model": "arcface", "version": "1", "dim": 512})


def test_gallery_export_round_trip() -> None:
    v = _unit(np.random.default_rng(3), 2)
    export = GalleryExport(
        door_id="front",
        generated_at=T0,
        contract=export_contract(),
        entries=[
            {"person_id": "t1", "embeddings": [contract.embedding_to_text(v[0])]},
            {
                "person_id": "t2",
                "valid_until": T0,
                "embeddings": [contract.embedding_to_text(v[1])],
            },
        ],
    )
    gallery = GalleryExport.model_validate_json(export.model_dump_json()).gallery()
    assert len(gallery) == 2
    assert gallery.match(v[1]).identity == Identity("t2", None, T0)


def _frames(confirmer: Confirmer, seq: list[Match | None], start: datetime = T0):
    out = []
    for i, m in enumerate(seq):
        d = confirmer.observe(m, start + timedelta(milliseconds=33 * i))
        if d is not None:
            out.append((i, d))
    return out


ALICE = Identity("alice")


def test_three_of_five_grants_once_per_approach() -> None:
    c = Confirmer(threshold=0.6, n=3, m=5, rearm_empty_frames=3)
    hit, low = Match(ALICE, 0.8), Match(ALICE, 0.3)
    decided = _frames(c, [None, hit, low, hit, None, hit, hit, hit, hit, None, None, None, hit])
    assert [(i, d.verdict, d.reason, d.person_id) for i, d in decided] == [
        (5, Verdict.GRANT, Reason.MATCH, "alice")
    ]
    (_, d) = decided[0]
    assert d.frames == 3
    assert d.latency_s == pytest.approx(4 * 0.033)  # first seen at frame 1


def test_leaving_rearms_and_a_stranger_is_denied() -> None:
    c = Confirmer(threshold=0.6, n=2, m=3, rearm_empty_frames=2)
    hit, stranger = Match(ALICE, 0.9), Match(ALICE, 0.1)
    decided = _frames(c, [hit, hit, hit, None, None, stranger, stranger])
    assert [(i, d.verdict, d.reason) for i, d in decided] == [
        (1, Verdict.GRANT, Reason.MATCH),
        (6, Verdict.DENY, Reason.UNKNOWN_FACE),
    ]


def test_expired_access_is_denied_even_on_a_perfect_match() -> None:
    c = Confirmer(threshold=0.6, n=1, m=1)
    ended = Identity("bob", valid_until=T0 - timedelta(days=1))
    (d,) = [d for _, d in _frames(c, [Match(ended, 0.99)])]
    assert (d.verdict, d.reason, d.person_id) == (Verdict.DENY, Reason.ACCESS_NOT_VALID, "bob")


def test_staying_in_front_of_the_door_decides_again_only_after_rearm_time() -> None:
    c = Confirmer(threshold=0.6, n=1, m=1, rearm_s=1.0)
    hit = Match(ALICE, 0.9)
    decided = _frames(c, [hit] * 40)  # 40 frames at 33 ms
    assert [i for i, _ in decided] == [0, 31]


def test_n_must_fit_in_m() -> None:
    with pytest.raises(ValueError, match="n <= m"):
        Confirmer(threshold=0.5, n=4, m=3)


def _det(size: float, marks: list[list[float]]) -> Detection:
    return Detection(0, 0, size, size, 0.9, np.array(marks, np.float32))


FRONTAL = [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]]


def test_gates_on_size_and_pose() -> None:
    assert check_geometry(_det(100, FRONTAL), DOOR_GATES) is None
    assert check_geometry(_det(40, FRONTAL), DOOR_GATES) is Reject.TOO_SMALL
    turned = [[30, 40], [70, 40], [68, 60], [35, 80], [65, 80]]  # nose near one eye
    assert pose(_det(100, turned)).yaw == pytest.approx(0.45)
    assert check_geometry(_det(100, turned), DOOR_GATES) is Reject.NOT_FRONTAL
    tilted = [[30, 40], [70, 70], [50, 60], [35, 80], [65, 80]]
    assert check_geometry(_det(100, tilted), DOOR_GATES) is Reject.NOT_FRONTAL


def test_sharpness_tells_texture_from_flat() -> None:
    rng = np.random.default_rng(0)
    textured = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    flat = np.full((112, 112, 3), 128, np.uint8)
    assert sharpness(textured) > 1000 > sharpness(flat) == 0.0
