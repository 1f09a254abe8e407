"""The door's gallery: enrolled embeddings as one normalised matrix, matched top-1 by cosine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from pydantic import AwareDatetime, BaseModel, ConfigDict

from protocols.face.contract import (
    RECOGNIZER,
    FloatArray,
    check_contract,
    embedding_from_text,
    l2_normalise,
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an enrolled embedding belongs to and when they may enter (None = open-ended)."""

    person_id: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until


@dataclass(frozen=True, slots=True)
class Match:
    identity: Identity | None  # None when the gallery is empty
    score: float  # cosine similarity of the best row, -1.0 when there is none


class Gallery:
    """Rows of unit vectors; several rows (photos) may belong to one identity."""

    def __init__(self, identities: Sequence[Identity], vectors: FloatArray) -> None:
        if len(identities) != len(vectors):
            raise ValueError(f"{len(identities)} identities for {len(vectors)} vectors")
        if len(vectors) and vectors.shape[1] != RECOGNIZER.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, not {RECOGNIZER.dim}")
        self._identities = list(identities)
        self._matrix: FloatArray = np.ascontiguousarray(
            l2_normalise(vectors.astype(np.float32))
            if len(vectors)
            else np.zeros((0, RECOGNIZER.dim), dtype=np.float32)
        )

    @classmethod
    def empty(cls) -> Gallery:
        return cls([], np.zeros((0, RECOGNIZER.dim), dtype=np.float32))

    def __len__(self) -> int:
        return len(self._identities)

    def match(self, embedding: FloatArray) -> Match:
        """Top-1 by cosine: one matrix-vector product and an argmax."""
        if not self._identities:
            return Match(None, -1.0)
        scores: npt.NDArray[np.float32] = self._matrix @ embedding.astype(np.float32)
        best = int(np.argmax(scores))
        return Match(self._identities[best], float(scores[best]))


class ExportContract(BaseModel):
    model: str
    version: str
    dim: int
    normalisation: str


class ExportEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: str
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    embeddings: list[str]  # base64 little-endian float32, see contract.encode_embedding


class GalleryExport(BaseModel):
    """What the cloud exports for one door and the gateway caches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    door_id: str
    generated_at: AwareDatetime
    contract: ExportContract
    entries: list[ExportEntry]

    def gallery(self) -> Gallery:
        check_contract(self.contract.model_dump())
        identities: list[Identity] = []
        rows: list[FloatArray] = []
        for entry in self.entries:
            who = Identity(entry.person_id, entry.valid_from, entry.valid_until)
            for text in entry.embeddings:
                identities.append(who)
                rows.append(embedding_from_text(text))
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), RECOGNIZER.dim)
        return Gallery(identities, vectors)


def export_contract() -> ExportContract:
    return ExportContract(
        model=RECOGNIZER.model,
        version=RECOGNIZER.version,
        dim=RECOGNIZER.dim,
        normalisation=RECOGNIZER.normalisation,
    )
