"""Load the face models only after their SHA-256 matches what `anju models fetch` recorded."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import onnxruntime as ort

from protocols.face.engine import FaceEngine, session_runner
from protocols.face.models import RECORD_NAME, default_models_dir, parse_record, verify


def models_dir(configured: Path | None = None) -> Path:
    return configured or default_models_dir(os.environ, Path.home())


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_engine(
    directory: Path | None = None, *, threads: int = 2, detect_side: int = 320
) -> FaceEngine:
    """Raises ModelsMissingError (with how to get them) unless every file verifies."""
    where = models_dir(directory)
    record_path = where / RECORD_NAME
    text = record_path.read_text(encoding="utf-8") if record_path.is_file() else None
    files = verify(parse_record(text, str(where)), lambda name: _sha256(where / name), str(where))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about shape hints of the dynamic detector
    sessions = {
        role: ort.InferenceSession(
            str(where / name), sess_options=options, providers=["CPUExecutionProvider"]
        )
        for role, name in files.items()
    }
    return FaceEngine(
        session_runner(sessions["detector"]),
        session_runner(sessions["recognizer"]),
        detect_side=detect_side,
        clock=time.perf_counter,
    )
