"""The manifest in the repo and the verification every loader runs before using a model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protocols.face.contract import RECOGNIZER
from protocols.face.models import (
    EXPECTED_FILES,
    ModelsMissingError,
    Record,
    RecordedModel,
    default_models_dir,
    parse_manifest,
    parse_record,
    verify,
)

MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.yaml"
A, B, C = "a" * 64, "b" * 64, "c" * 64
D, R = EXPECTED_FILES["detector"], EXPECTED_FILES["recognizer"]


def test_manifest_names_both_models_with_hashes_matching_the_brief() -> None:
    manifest = parse_manifest(yaml.safe_load(MANIFEST.read_text()))
    det, rec = manifest.by_role("detector"), manifest.by_role("recognizer")
    assert det.source.sha256.startswith("8f2383e4dd3cfbb4")
    assert rec.source.sha256.startswith("d8ba40c0127fb8ca")
    assert (rec.source.registry, det.source.registry) == ("npm", "pypi")
    assert rec.version == RECOGNIZER.version  # embeddings are tied to this exact model
    assert {m.role: m.output for m in manifest.models} == EXPECTED_FILES


def _record() -> Record:
    return Record(
        models={
            D: RecordedModel(
                role="detector", name="d", version="1", file=D, sha256=A, source_sha256=C
            ),
            R: RecordedModel(
                role="recognizer", name="r", version="1", file=R, sha256=B, source_sha256=C
            ),
        }
    )


def test_verify_accepts_matching_files() -> None:
    digests = {D: A, R: B}
    assert verify(_record(), digests.get, "/m") == {"detector": D, "recognizer": R}


@pytest.mark.parametrize(
    ("digests", "message"),
    [
        ({D: A}, f"{R} is missing"),
        ({D: A, R: A}, "damaged or was replaced"),
    ],
)
def test_verify_refuses_missing_or_altered_files(digests: dict[str, str], message: str) -> None:
    with pytest.raises(ModelsMissingError, match=message) as info:
        verify(_record(), digests.get, "/m")
    assert "anju models fetch" in str(info.value)


def test_no_record_says_how_to_get_the_models() -> None:
    with pytest.raises(ModelsMissingError, match="no face models in /m; run `anju models fetch`"):
        parse_record(None, "/m")
    with pytest.raises(ModelsMissingError, match="unreadable"):
        parse_record("{", "/m")


def test_default_models_dir() -> None:
    home = Path("/home/x")
    assert default_models_dir({}, home) == home / ".cache/anju/models"
    assert default_models_dir({"XDG_CACHE_HOME": "/c"}, home) == Path("/c/anju/models")
    assert default_models_dir({"ANJU_MODELS_DIR": "/m"}, home) == Path("/m")
